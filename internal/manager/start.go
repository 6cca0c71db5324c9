package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/internal/manager/images"
	"github.com/berth-project/berth/internal/manager/lifecycle"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Waiting reasons, as the kubelet reports them.
const (
	reasonCrashLoopBackOff  = "CrashLoopBackOff"
	reasonCreateConfigError = "CreateContainerConfigError"
	reasonCreateError       = "CreateContainerError"
	reasonRunError          = "RunContainerError"
	reasonPostStartHook     = "PostStartHookError"
	reasonCreating          = "ContainerCreating"
	reasonInitializing      = "PodInitializing"
)

// errBackOff: the container waits out its crash-loop back-off.
var errBackOff = errors.New("back-off restarting failed container")

// startContainer is the kubelet's startContainer: back-off, ensure the
// image, generate the config, create, start, the legacy log symlink,
// then the PostStart hook, whose failure kills the container.
func (m *Manager) startContainer(ctx context.Context, r *podRun, status *podStatus, sandboxID string, sandboxCfg *runtimeapi.PodSandboxConfig, c *corev1.Container) error {
	pod := r.pod
	obj := containerObject(pod, c.Name)
	last := status.find(c.Name)
	if last != nil && last.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		if in, left := m.backOff.inBackOff(c.Name, last.FinishedAt); in {
			m.event(obj, "Warning", "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			m.setWaiting(c.Name, reasonCrashLoopBackOff, fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", m.backOffDelay(left), c.Name, pod.Name, pod.Namespace, pod.UID))
			m.wakeAfter(ctx, left)
			return errBackOff
		}
		m.backOff.next(c.Name, last.FinishedAt)
	}
	restartCount := m.restartCount(pod, last, c.Name)

	m.mu.Lock()
	m.pullFor = obj
	m.mu.Unlock()
	imageRef, err := m.images.EnsureImageExists(ctx, pod, c, m.pullSecrets(r), sandboxCfg)
	if err != nil {
		var ie *images.Error
		if errors.As(err, &ie) {
			m.setWaiting(c.Name, ie.Reason, ie.Message)
		}
		return err
	}

	cfg, err := m.containerConfig(ctx, r, c, restartCount, imageRef, sandboxCfg.GetLogDirectory())
	if err != nil {
		m.event(obj, "Warning", "Failed", "Error: %v", err)
		m.setWaiting(c.Name, reasonCreateConfigError, err.Error())
		return err
	}
	id, err := m.opts.Runtime.CreateContainer(ctx, sandboxID, cfg, sandboxCfg)
	if err != nil {
		m.event(obj, "Warning", "Failed", "Error: %v", err)
		m.setWaiting(c.Name, reasonCreateError, err.Error())
		return fmt.Errorf("create container %q: %w", c.Name, err)
	}
	m.event(obj, "Normal", "Created", "Created container: %s", c.Name)
	if err := m.opts.Runtime.StartContainer(ctx, id); err != nil {
		m.event(obj, "Warning", "Failed", "Error: %v", err)
		m.setWaiting(c.Name, reasonRunError, err.Error())
		return fmt.Errorf("start container %q: %w", c.Name, err)
	}
	m.event(obj, "Normal", "Started", "Started container %s", c.Name)
	m.clearWaiting(c.Name)
	logPath := filepath.Join(sandboxCfg.GetLogDirectory(), cfg.GetLogPath())
	m.linkLegacyLog(pod, c.Name, id, logPath)
	m.follow(ctx, c.Name, id, logPath, time.Time{})

	if h := postStart(c); h != nil {
		if msg, err := m.hooks.Run(ctx, pod, r.podIP, c, id, h, 0); err != nil {
			m.event(obj, "Warning", "FailedPostStartHook", "%s", lifecycle.Message(pod, c, h, msg, err))
			cs := &containerStatus{ID: id, Name: c.Name, State: runtimeapi.ContainerState_CONTAINER_RUNNING}
			if kerr := m.killContainer(ctx, r, cs, c, "FailedPostStartHook"); kerr != nil {
				m.opts.Logger.Warn("kill container after its PostStart hook failed", "container", c.Name, "error", kerr)
			}
			m.setWaiting(c.Name, reasonPostStartHook, err.Error())
			return fmt.Errorf("%s: %w", reasonPostStartHook, err)
		}
	}
	m.startProbes(ctx, pod, r.podIP, c, id)
	return nil
}

// containerConfig resolves env and mounts, generates the config, checks
// the image's user where runAsNonRoot leaves it to the image, and makes
// the container's log directory, as the kubelet does before
// CreateContainer.
func (m *Manager) containerConfig(ctx context.Context, r *podRun, c *corev1.Container, restartCount uint32, imageRef, logDir string) (*runtimeapi.ContainerConfig, error) {
	pod := r.pod
	pod.Status.PodIP = r.podIP
	pod.Status.PodIPs = nil
	for _, ip := range r.ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	obj := containerObject(pod, c.Name)
	env, lookup, warnings, err := containerEnv(pod, c, r.objs, m.opts.Node)
	m.warn(obj, warnings)
	if err != nil {
		return nil, err
	}
	vols, warnings, err := m.volumes.Prepare(ctx, pod, r.objs, m.opts.Node)
	m.warn(obj, warnings)
	if err != nil {
		return nil, err
	}
	mounts, err := m.volumes.Mounts(ctx, pod, c, vols, lookup)
	if err != nil {
		return nil, err
	}
	cfg, warnings, err := generateContainerConfig(pod, c, restartCount, imageRef, env, lookup, mounts, m.configOptions())
	m.warn(obj, warnings)
	if err != nil {
		return nil, err
	}
	img, err := m.opts.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: imageRef}, false)
	if err != nil {
		return nil, fmt.Errorf("image status of %q: %w", c.Image, err)
	}
	if err := verifyImageUser(pod, c, img.GetImage()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(logDir, c.Name), 0o755); err != nil {
		return nil, fmt.Errorf("container log directory: %w", err)
	}
	return cfg, nil
}

// warn shows each warning once per object.
func (m *Manager) warn(obj string, warnings []string) {
	for _, w := range warnings {
		key := obj + "\x00" + w
		m.mu.Lock()
		seen := m.warned[key]
		m.warned[key] = true
		m.mu.Unlock()
		if !seen {
			m.event(obj, "Warning", "BerthUnsupported", "%s", w)
		}
	}
}

// restartCount is the next attempt of a container: one more than its
// last, or, when the runtime lost them, one more than the newest log
// file the kubelet's naming left (<container>/<n>.log).
func (m *Manager) restartCount(pod *corev1.Pod, last *containerStatus, name string) uint32 {
	if last != nil {
		return last.Attempt + 1
	}
	dir := filepath.Join(m.opts.PodLogsDir, podLogDirName(pod), name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	next := uint32(0)
	for _, e := range entries {
		var n uint32
		if _, err := fmt.Sscanf(e.Name(), "%d.log", &n); err == nil && filepath.Ext(e.Name()) == ".log" && n+1 > next {
			next = n + 1
		}
	}
	return next
}

func podLogDirName(pod *corev1.Pod) string {
	return pod.Namespace + "_" + pod.Name + "_" + string(pod.UID)
}

// pullSecrets are the Secrets the pod names in imagePullSecrets; a
// missing one is a warning, as in the kubelet.
func (m *Manager) pullSecrets(r *podRun) []corev1.Secret {
	var out []corev1.Secret
	for _, ref := range r.pod.Spec.ImagePullSecrets {
		s, ok := r.objs.Secrets[ref.Name]
		if !ok {
			m.warn(podObject(r.pod), []string{fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", ref.Name)})
			continue
		}
		out = append(out, *s)
	}
	return out
}

func postStart(c *corev1.Container) *corev1.LifecycleHandler {
	if c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PostStart
}

func preStop(c *corev1.Container) *corev1.LifecycleHandler {
	if c == nil || c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PreStop
}

// backOffDelay is the kubelet's wording of the current back-off.
func (m *Manager) backOffDelay(left time.Duration) string {
	return left.Round(time.Second).String()
}

// wakeAfter syncs again when a back-off ends.
func (m *Manager) wakeAfter(ctx context.Context, d time.Duration) {
	t := time.AfterFunc(d, m.poke)
	context.AfterFunc(ctx, func() { t.Stop() })
}

func mkdirLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod log directory: %w", err)
	}
	return nil
}
