package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// lockPod makes sure one berth run at a time runs a pod: a second run of
// the same manifest on this host fails at once instead of fighting the
// first over its containers. The lock goes with the process, so a killed
// run leaves none behind.
func (m *Manager) lockPod(r *podRun) (unlock func(), err error) {
	dir := filepath.Join(m.opts.StateDir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pod lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, string(r.pod.UID)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pod lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("pod %s/%s (uid %s) is being run by another berth run on this host", r.pod.Namespace, r.pod.Name, r.pod.UID)
		}
		return nil, fmt.Errorf("pod lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// adopt takes over the running containers a previous run of the pod left
// (berth run was killed, the pod kept running): their logs are followed
// from now on and their probes run, as for the containers this run
// starts.
func (m *Manager) adopt(ctx context.Context, r *podRun, status *podStatus) {
	for _, cs := range status.Containers {
		if cs.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		c := specOf(r.pod, cs.Name)
		if c == nil || m.probe.known(cs.ID) {
			continue
		}
		m.event(containerObject(r.pod, cs.Name), "Normal", "Adopted", "Container %s was left running by an earlier run; following it", cs.Name)
		logPath := filepath.Join(m.opts.PodLogsDir, podLogDirName(r.pod), containerLogPath(cs.Name, cs.Attempt))
		m.follow(ctx, cs.Name, cs.ID, logPath, m.opts.Clock())
		m.startProbes(ctx, r.pod, r.podIP, c, cs.ID)
	}
}

// clearFinished removes what an earlier run of the same manifest left
// once it ended (without --rm): running a manifest again runs the pod
// again, as `docker run` would, instead of finding it over. A pod still
// running (its berth run was killed) is kept and adopted.
func (m *Manager) clearFinished(ctx context.Context, r *podRun) error {
	status, err := getPodStatus(ctx, m.opts.Runtime, r.pod)
	if err != nil {
		return err
	}
	if len(status.Sandboxes) == 0 && len(status.Containers) == 0 || stillRunning(status) {
		return nil
	}
	m.event(podObject(r.pod), "Normal", "Removed", "Removed what an earlier run of this pod left when it ended")
	if err := m.Remove(ctx, r.pod); err != nil {
		return err
	}
	// Its logs go too, as the kubelet's do with a removed pod: the new
	// run starts at restart count 0, not after the old run's log files.
	return os.RemoveAll(filepath.Join(m.opts.PodLogsDir, podLogDirName(r.pod)))
}

// stillRunning: something of the pod still runs (a ready sandbox or a running
// container).
func stillRunning(status *podStatus) bool {
	for _, sb := range status.Sandboxes {
		if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			return true
		}
	}
	for _, c := range status.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return true
		}
	}
	return false
}
