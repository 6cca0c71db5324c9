package cli

import (
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/manager"
	"github.com/berth-project/berth/internal/podfile"
	"google.golang.org/protobuf/encoding/protojson"
)

// dryRun prints, as JSON, the CRI configs the first sync would send:
// the sandbox's, then each container's in start order. Nothing on the
// host is changed and no runtime is contacted.
func dryRun(out io.Writer, file *podfile.File, f runFlags) error {
	plan, err := manager.DryRun(file.Pod, file.Objects, manager.DryRunOptions{
		PodLogsDir: f.podLogsDir, StateDir: f.stateDir,
		ResolvConf: f.serve.ResolvConf, Node: localNode(),
	})
	if err != nil {
		return err
	}
	mo := protojson.MarshalOptions{Multiline: true, Indent: "  "}
	for _, w := range plan.Warnings {
		fmt.Fprintf(out, "# warning: %s\n", w)
	}
	b, err := mo.Marshal(plan.Sandbox)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# RunPodSandbox\n%s\n", b)
	for _, c := range plan.Containers {
		b, err := mo.Marshal(c)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "# CreateContainer %s\n%s\n", c.GetMetadata().GetName(), b)
	}
	return nil
}
