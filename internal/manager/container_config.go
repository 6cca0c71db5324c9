package manager

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// containerKind is where a container sits in the pod spec, which decides
// how it is started, restarted and (for sidecars) OOM-scored.
type containerKind int

const (
	regularContainer containerKind = iota
	initContainer
	// sidecarContainer is an init container with restartPolicy Always.
	sidecarContainer
)

// defaultTerminationMessagePath is the API default for
// terminationMessagePath.
const defaultTerminationMessagePath = "/dev/termination-log"

// locateContainer finds the named container in the pod: its kind and its
// spec path, for messages.
func locateContainer(pod *corev1.Pod, name string) (containerKind, string, bool) {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.Name != name {
			continue
		}
		field := fmt.Sprintf("spec.initContainers[%d]", i)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return sidecarContainer, field, true
		}
		return initContainer, field, true
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return regularContainer, fmt.Sprintf("spec.containers[%d]", i), true
		}
	}
	return 0, "", false
}

// containerEnv resolves env through podenv and returns CRI KeyValues plus
// a lookup func for $(VAR) expansion in command/args/subPathExpr.
func containerEnv(pod *corev1.Pod, c *corev1.Container, objs podenv.Objects, node podenv.Node) (env []*runtimeapi.KeyValue, lookup func(string) (string, bool), warnings []string, err error) {
	vars, warnings, err := podenv.Env(pod, c, objs, node)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("environment of container %q: %w", c.Name, err)
	}
	values := make(map[string]string, len(vars))
	env = make([]*runtimeapi.KeyValue, 0, len(vars))
	for _, v := range vars {
		env = append(env, &runtimeapi.KeyValue{Key: v.Name, Value: []byte(v.Value)})
		values[v.Name] = v.Value
	}
	lookup = func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok
	}
	return env, lookup, warnings, nil
}

// generateContainerConfig is kuberuntime's generateContainerConfig for
// one attempt (restartCount) of c. Its one side effect, last and only once
// the pod is known good, is the empty host file behind the termination
// message mount (terminationLogPath). The caller must still create the
// container's log directory, <LogDirectory>/<name>, and run
// verifyImageUser when the image decides the user.
func generateContainerConfig(pod *corev1.Pod, c *corev1.Container, restartCount uint32, imageRef string, env []*runtimeapi.KeyValue, lookup func(string) (string, bool), mounts []*runtimeapi.Mount, opts configOptions) (cfg *runtimeapi.ContainerConfig, warnings []string, err error) {
	opts = opts.withDefaults()
	if err := checkPodIdentity(pod); err != nil {
		return nil, nil, err
	}
	kind, field, ok := locateContainer(pod, c.Name)
	if !ok {
		return nil, nil, fmt.Errorf("container %q is not in pod %q", c.Name, pod.Name)
	}
	if imageRef == "" {
		return nil, nil, fmt.Errorf("container %q: no image reference (pull %q first)", c.Name, c.Image)
	}
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	cfg = &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: restartCount},
		Image:       &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command, lookup),
		Args:        expandAll(c.Args, lookup),
		WorkingDir:  c.WorkingDir,
		Envs:        env,
		Labels:      containerLabels(pod, c),
		Annotations: containerAnnotations(pod, c, restartCount),
		LogPath:     containerLogPath(c.Name, restartCount),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
	}
	if cfg.StopSignal, err = stopSignal(c, field); err != nil {
		return nil, nil, err
	}

	res, w, err := containerResources(pod, c, kind, field, opts)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, w...)
	sc, w, err := containerSecurityContext(pod, c, field, opts)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, w...)
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: res, SecurityContext: sc}

	target := terminationMessagePath(c)
	if !path.IsAbs(target) {
		return nil, nil, fmt.Errorf("%s.terminationMessagePath: %q must be absolute", field, target)
	}
	switch p := c.TerminationMessagePolicy; p {
	case "", corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError:
	default:
		return nil, nil, fmt.Errorf("%s.terminationMessagePolicy: unsupported value %q (want File or FallbackToLogsOnError)", field, p)
	}
	cfg.Mounts = slices.Clone(mounts)
	if slices.ContainsFunc(mounts, func(m *runtimeapi.Mount) bool { return path.Clean(m.ContainerPath) == path.Clean(target) }) {
		// The volume wins: a second mount at its path would hide it.
		warnings = append(warnings, fmt.Sprintf(
			"%s.terminationMessagePath: a volume is mounted at %s; no termination message will be captured", field, target))
		return cfg, warnings, nil
	}
	hostFile := terminationLogPath(pod, c.Name, restartCount, opts)
	if opts.DryRun {
		// Named, not made.
	} else if err := createTerminationLog(hostFile); err != nil {
		return nil, nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{HostPath: hostFile, ContainerPath: target})
	return cfg, warnings, nil
}

func expandAll(in []string, lookup func(string) (string, bool)) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = podenv.Expand(s, lookup)
	}
	return out
}

// containerLogPath is relative to the sandbox's LogDirectory:
// <name>/<restartCount>.log, as the kubelet lays it out.
func containerLogPath(name string, restartCount uint32) string {
	return filepath.Join(name, strconv.FormatUint(uint64(restartCount), 10)+".log")
}

// terminationLogPath is the host file behind a container attempt's
// termination message; the sync reads it after the container exits and
// removes <TerminationDir>/<uid> with the pod.
func terminationLogPath(pod *corev1.Pod, name string, restartCount uint32, opts configOptions) string {
	opts = opts.withDefaults()
	return filepath.Join(opts.TerminationDir, string(pod.UID), "containers", name,
		strconv.FormatUint(uint64(restartCount), 10)+"-termination-log")
}

// createTerminationLog makes the file empty and world-writable, as the
// kubelet does: the container may run as any user, and the umask must not
// decide whether it can write its message.
func createTerminationLog(file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("create termination message directory: %w", err)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("create termination message file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create termination message file: %w", err)
	}
	if err := os.Chmod(file, 0o666); err != nil {
		return fmt.Errorf("chmod termination message file: %w", err)
	}
	return nil
}

func terminationMessagePath(c *corev1.Container) string {
	if c.TerminationMessagePath == "" {
		return defaultTerminationMessagePath
	}
	return c.TerminationMessagePath
}

func terminationMessagePolicy(c *corev1.Container) corev1.TerminationMessagePolicy {
	if c.TerminationMessagePolicy == "" {
		return corev1.TerminationMessageReadFile
	}
	return c.TerminationMessagePolicy
}

// stopSignal maps lifecycle.stopSignal to the CRI enum, whose names spell
// SIGRTMIN+1 as SIGRTMINPLUS1.
func stopSignal(c *corev1.Container, field string) (runtimeapi.Signal, error) {
	if c.Lifecycle == nil || c.Lifecycle.StopSignal == nil {
		return runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, nil
	}
	s := string(*c.Lifecycle.StopSignal)
	name := "SIGNAL_" + strings.NewReplacer("+", "PLUS", "-", "MINUS").Replace(s)
	v, ok := runtimeapi.Signal_value[name]
	if !ok || v == int32(runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT) {
		return 0, fmt.Errorf("%s.lifecycle.stopSignal: unsupported signal %q", field, s)
	}
	return runtimeapi.Signal(v), nil
}
