package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/config"
	"github.com/berth-project/berth/internal/manager"
	"github.com/berth-project/berth/internal/podfile"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// runFlags are `berth run`'s own settings; the in-process runtime takes
// serve's.
type runFlags struct {
	runtimeEndpoint  string
	imageEndpoint    string
	podLogsDir       string
	containerLogsDir string
	stateDir         string
	statusFile       string
	rm               bool
	dryRun           bool
	serve            config.Serve
	binDirs          string
}

// ExitError ends berth with a status code of its own.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

func newRunFlags() runFlags {
	f := runFlags{serve: config.DefaultServe()}
	f.serve.LogLevel = "warn"
	f.binDirs = strings.Join(f.serve.CNIBinDirs, string(filepath.ListSeparator))
	return f
}

func newRun(out, errOut io.Writer) *cobra.Command {
	f := newRunFlags()
	cmd := &cobra.Command{
		Use:   "run [flags] FILE|-",
		Short: "Run a Pod manifest the way a kubelet would, on berth or any CRI runtime",
		Long: `Run one Kubernetes Pod (YAML or JSON; the file may also hold the ConfigMaps and
Secrets the Pod uses) with the kubelet's semantics: image pull policy, init
containers, sidecars, hooks, probes, restart policy with back-off. Events and
the containers' logs are printed until the pod ends; Ctrl-C stops it
gracefully. The exit status is 0 when the pod Succeeded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.serve.CNIBinDirs = filepath.SplitList(f.binDirs)
			file, err := readManifest(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			if f.dryRun {
				return dryRun(out, file, f)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runPod(ctx, cmd.Context(), out, errOut, file, f)
		},
	}
	fl := cmd.Flags()
	addPodFlags(fl, &f)
	fl.StringVar(&f.statusFile, "status-file", "", "write the pod with its final status (YAML) to this file")
	fl.BoolVar(&f.rm, "rm", false, "remove the pod's containers, sandbox and volumes when it ends")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the CRI configs berth run would send, and do nothing")
	return cmd
}

// addPodFlags are the flags berth run and berth rm share: where the
// runtime is, where pods keep their files, and the in-process runtime's
// settings.
func addPodFlags(fl *pflag.FlagSet, f *runFlags) {
	fl.StringVar(&f.runtimeEndpoint, "runtime-endpoint", "", "CRI runtime socket (unix:///path); empty runs berth's own runtime in-process on the local Docker")
	fl.StringVar(&f.imageEndpoint, "image-endpoint", "", "CRI image service socket (default: the runtime endpoint)")
	fl.StringVar(&f.podLogsDir, "pod-logs-dir", "/var/log/pods", "directory of pod log directories")
	fl.StringVar(&f.containerLogsDir, "container-logs-dir", "/var/log/containers", "directory of the legacy container log symlinks (empty: none)")
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/berth/run", "directory for pod volumes and termination-message files")
	fl.StringVar(&f.serve.DockerHost, "docker-host", f.serve.DockerHost, "Docker Engine endpoint of the in-process runtime")
	fl.StringVar(&f.serve.RootDir, "root-dir", f.serve.RootDir, "state directory of the in-process runtime (shared with berth serve)")
	fl.StringVar(&f.serve.PauseImage, "pod-infra-image", f.serve.PauseImage, "pause image of the in-process runtime")
	fl.StringVar(&f.serve.CNIConfDir, "cni-conf-dir", f.serve.CNIConfDir, "CNI config directory of the in-process runtime")
	fl.StringVar(&f.binDirs, "cni-bin-dir", f.binDirs, "colon-separated CNI plugin directories of the in-process runtime")
	fl.StringVar(&f.serve.LogLevel, "log-level", f.serve.LogLevel, "log level: debug, info, warn, error")
}

func readManifest(stdin io.Reader, name string) (*podfile.File, error) {
	r := stdin
	if name != "-" {
		fh, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	file, err := podfile.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return file, nil
}

// runPod runs the pod to its end or until ctx ends (a signal), then
// reports its status. base outlives the signal, for the stop and --rm.
func runPod(ctx, base context.Context, out, errOut io.Writer, file *podfile.File, f runFlags) error {
	level, err := config.ParseLevel(f.serve.LogLevel)
	if err != nil {
		return err
	}
	log := newLogger(errOut, level)
	rt, err := connectRuntime(base, errOut, f)
	if err != nil {
		return err
	}
	defer rt.close()

	p := newPrinter(out)
	m, err := newManager(rt, f, p, log)
	if err != nil {
		return err
	}
	final, runErr := m.Run(ctx, file.Pod, file.Objects)
	if final != nil {
		p.summary(final)
		if f.statusFile != "" {
			if err := writeStatus(f.statusFile, final); err != nil {
				runErr = errors.Join(runErr, err)
			}
		}
	}
	if f.rm {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(base), time.Minute)
		defer cancel()
		if err := m.Remove(rmCtx, file.Pod); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("remove pod: %w", err))
		}
	}
	if runErr != nil {
		return runErr
	}
	if ctx.Err() != nil {
		return &ExitError{Code: 130, Err: errors.New("stopped by signal")}
	}
	if final.Status.Phase != corev1.PodSucceeded {
		return &ExitError{Code: 1, Err: fmt.Errorf("pod %s %s", final.Name, final.Status.Phase)}
	}
	return nil
}

func writeStatus(path string, pod *corev1.Pod) error {
	pod.APIVersion, pod.Kind = "v1", "Pod"
	b, err := yaml.Marshal(pod)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("status file: %w", err)
	}
	return os.Rename(tmp, path)
}

// newManager is the runtime manager over rt with berth run's settings.
func newManager(rt *runtimeConn, f runFlags, p *printer, log *slog.Logger) (*manager.Manager, error) {
	return manager.New(manager.Options{
		Runtime: rt.runtime, Images: rt.images,
		PodLogsDir: f.podLogsDir, ContainerLogsDir: f.containerLogsDir, StateDir: f.stateDir,
		ResolvConf: f.serve.ResolvConf, Node: localNode(),
		Events: p.event, Logs: p.logs(), PullProgress: p.progress,
		Logger: log,
	})
}
