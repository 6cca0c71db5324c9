package manager

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// collectGarbage removes exited containers beyond the newest two attempts
// of each name (the kubelet keeps one dead container per container for
// its last state and logs) and not-ready sandboxes that are no longer the
// newest and hold no container.
func (m *Manager) collectGarbage(ctx context.Context, r *podRun, status *podStatus) {
	seen := map[string]int{}
	for _, c := range status.Containers {
		seen[c.Name]++
		if seen[c.Name] <= 2 || c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if err := m.opts.Runtime.RemoveContainer(ctx, c.ID); err != nil && !isNotFound(err) {
			m.opts.Logger.Debug("remove old container", "container", c.Name, "id", c.ID, "error", err)
		}
	}
	for i, sb := range status.Sandboxes {
		if i == 0 || sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		cs, err := m.opts.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: sb.GetId()})
		if err != nil || len(cs) > 0 {
			continue
		}
		if err := m.opts.Runtime.RemovePodSandbox(ctx, sb.GetId()); err != nil && !isNotFound(err) {
			m.opts.Logger.Debug("remove old sandbox", "sandbox", sb.GetId(), "error", err)
		}
	}
}
