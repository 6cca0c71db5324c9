package manager

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/berth-project/berth/internal/manager/podenv"
	"github.com/berth-project/berth/internal/manager/volume"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DryRunOptions are the host facts a dry run uses.
type DryRunOptions struct {
	PodLogsDir, StateDir string
	ResolvConf           string
	Node                 podenv.Node
}

// DryRunPlan is what the first sync of a pod would send.
type DryRunPlan struct {
	Sandbox    *runtimeapi.PodSandboxConfig
	Containers []*runtimeapi.ContainerConfig
	Warnings   []string
}

// DryRun generates the sandbox config and every container's config (init
// containers first, then app containers, each at restart count 0) with
// images as written, since nothing is pulled. Nothing on the host
// changes: volumes are checked and named where they would be, not made.
func DryRun(pod *corev1.Pod, objs podenv.Objects, o DryRunOptions) (*DryRunPlan, error) {
	pod = pod.DeepCopy()
	Default(pod)
	opts := configOptions{PodLogsDir: o.PodLogsDir, HostResolvConf: o.ResolvConf, Node: o.Node,
		TerminationDir: filepath.Join(o.StateDir, "pods"), DryRun: true}
	if opts.HostResolvConf == "" {
		opts.HostResolvConf = "/etc/resolv.conf"
	}
	admitted, err := admit(pod)
	if err != nil {
		return nil, fmt.Errorf("pod %q: %w", pod.Name, err)
	}
	sb, warnings, err := generateSandboxConfig(pod, 0, opts)
	if err != nil {
		return nil, err
	}
	plan := &DryRunPlan{Sandbox: sb, Warnings: append(admitted, warnings...)}
	vm, err := volume.New(volume.Options{Root: filepath.Join(o.StateDir, "pods"), Logger: slog.New(slog.DiscardHandler), DryRun: true})
	if err != nil {
		return nil, err
	}
	vols, warnings, err := vm.Prepare(context.Background(), pod, objs, o.Node)
	plan.Warnings = append(plan.Warnings, warnings...)
	if err != nil {
		return nil, err
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			env, lookup, warnings, err := containerEnv(pod, c, objs, o.Node)
			plan.Warnings = append(plan.Warnings, warnings...)
			if err != nil {
				return nil, err
			}
			mounts, err := vm.Mounts(context.Background(), pod, c, vols, lookup)
			if err != nil {
				return nil, err
			}
			cfg, warnings, err := generateContainerConfig(pod, c, 0, c.Image, env, lookup, mounts, opts)
			plan.Warnings = append(plan.Warnings, warnings...)
			if err != nil {
				return nil, fmt.Errorf("container %q: %w", c.Name, err)
			}
			plan.Containers = append(plan.Containers, cfg)
		}
	}
	return plan, nil
}
