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
