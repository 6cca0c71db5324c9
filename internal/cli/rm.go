package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/internal/config"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
)

// newRm is `berth rm`: remove what berth run left of a manifest's pod.
func newRm(out, errOut io.Writer) *cobra.Command {
	f := newRunFlags()
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [flags] FILE|-",
		Short: "Remove what berth run left of a Pod manifest: containers, sandbox, volumes, logs",
		Long: `Remove the pod that berth run ran from this manifest (found by the UID berth run
derives from it) when it ended without --rm: its containers and sandbox in
the runtime, its volumes and its log directory. A pod still being run is
refused; one still running after its berth run was killed needs --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.serve.CNIBinDirs = filepath.SplitList(f.binDirs)
			file, err := readManifest(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			return removePod(ctx, out, errOut, file.Pod, f, force)
		},
	}
	addPodFlags(cmd.Flags(), &f)
	cmd.Flags().BoolVar(&force, "force", false, "also remove a pod that still runs after its berth run was killed (no grace period)")
	return cmd
}

func removePod(ctx context.Context, out, errOut io.Writer, pod *corev1.Pod, f runFlags, force bool) error {
	level, err := config.ParseLevel(f.serve.LogLevel)
	if err != nil {
		return err
	}
	rt, err := connectRuntime(ctx, errOut, f)
	if err != nil {
		return err
	}
	defer rt.close()
	m, err := newManager(rt, f, newPrinter(out), newLogger(errOut, level))
	if err != nil {
		return err
	}
	if err := m.Delete(ctx, pod, force); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed pod %s/%s\n", pod.Namespace, pod.Name)
	return nil
}
