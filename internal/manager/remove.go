package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
)

// Remove deletes what the pod left once stopped: its containers and
// sandboxes in the runtime, its volumes, the legacy log links, and its
// termination-message files. Its log directory stays, as the kubelet's
// does until the pod object goes. Remove is idempotent.
func (m *Manager) Remove(ctx context.Context, pod *corev1.Pod) error {
	status, err := getPodStatus(ctx, m.opts.Runtime, pod)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range status.Containers {
		if err := m.opts.Runtime.RemoveContainer(ctx, c.ID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %q: %w", c.Name, err))
		}
		if m.opts.ContainerLogsDir != "" {
			if err := os.Remove(legacyLogLink(m.opts.ContainerLogsDir, pod, c.Name, c.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	for _, sb := range status.Sandboxes {
		if err := m.opts.Runtime.StopPodSandbox(ctx, sb.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %q: %w", sb.GetId(), err))
		}
		if err := m.opts.Runtime.RemovePodSandbox(ctx, sb.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove sandbox %q: %w", sb.GetId(), err))
		}
	}
	if err := m.volumes.Cleanup(ctx, pod); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(m.opts.StateDir, "pods", string(pod.UID))); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// runtimeName is the runtime's name as container IDs carry it
// ("docker://", "containerd://"), asked once.
func (m *Manager) runtimeName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runtime == "" {
		v, err := m.opts.Runtime.Version(context.Background(), "v1")
		if err != nil || v.GetRuntimeName() == "" {
			return "cri"
		}
		m.runtime = v.GetRuntimeName()
	}
	return m.runtime
}

// ErrPodRunning: Delete was asked to remove a pod that still runs.
var ErrPodRunning = errors.New("pod is running")

// Delete removes what runs of pod (a manifest, defaulted here as Run
// defaults it) left: its containers and sandboxes, volumes and logs. A
// pod whose berth run is live is refused; one that still runs without a
// berth run (the run was killed) is refused unless force, which stops it
// without grace.
func (m *Manager) Delete(ctx context.Context, pod *corev1.Pod, force bool) error {
	Default(pod)
	unlock, err := m.lockPod(&podRun{pod: pod})
	if err != nil {
		return err
	}
	defer unlock()
	status, err := getPodStatus(ctx, m.opts.Runtime, pod)
	if err != nil {
		return err
	}
	if !force && stillRunning(status) {
		return fmt.Errorf("%w: %s/%s has running containers or a ready sandbox (its berth run was killed); pass --force to stop it", ErrPodRunning, pod.Namespace, pod.Name)
	}
	if err := m.Remove(ctx, pod); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(m.opts.PodLogsDir, podLogDirName(pod)))
}
