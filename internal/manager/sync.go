package manager

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// syncOnce is one sync of the pod, in the kubelet's numbered steps. It
// returns what the runtime reported, and errPodOver once the pod has
// nothing left to run.
func (m *Manager) syncOnce(ctx context.Context, r *podRun) (*podStatus, error) {
	pod := r.pod
	status, err := getPodStatus(ctx, m.opts.Runtime, pod)
	if err != nil {
		return nil, err
	}
	r.setIPs(status)
	m.adopt(ctx, r, status)

	// Step 1: the plan.
	acts := computeActions(pod, status, m.probe.results(), containerHash)
	m.opts.Logger.Debug("sync", "pod", pod.Name, "actions", fmt.Sprintf("%+v", acts))
	if acts.KillPod && !acts.CreateSandbox {
		return status, errPodOver
	}

	// Step 2: a sandbox that changed takes everything with it.
	if acts.KillPod {
		if len(status.Sandboxes) > 0 {
			m.event(podObject(pod), "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		}
		if err := m.killPod(ctx, r, status); err != nil {
			return status, err
		}
	} else {
		// Step 3: containers the plan kills.
		for id, k := range acts.ContainersToKill {
			cs := findID(status, id)
			if cs == nil {
				continue
			}
			if err := m.killContainer(ctx, r, cs, nil, k.Message); err != nil {
				return status, err
			}
		}
	}

	// Step 4: the sandbox.
	sandboxID := acts.SandboxID
	if acts.CreateSandbox {
		id, err := m.createSandbox(ctx, r, acts.Attempt)
		if err != nil {
			return status, err
		}
		sandboxID = id
	}
	sandboxCfg, _, err := generateSandboxConfig(pod, m.sandboxAttempt(status, acts), m.configOptions())
	if err != nil {
		return status, err
	}

	// Step 5: init containers, in order; a regular one alone.
	for _, i := range acts.InitContainersToStart {
		c := &pod.Spec.InitContainers[i]
		if err := m.startContainer(ctx, r, status, sandboxID, sandboxCfg, c); err != nil {
			m.opts.Logger.Debug("start init container", "container", c.Name, "error", err)
			return status, nil
		}
	}

	// Step 6: the app containers.
	for _, i := range acts.ContainersToStart {
		c := &pod.Spec.Containers[i]
		if err := m.startContainer(ctx, r, status, sandboxID, sandboxCfg, c); err != nil {
			m.opts.Logger.Debug("start container", "container", c.Name, "error", err)
		}
	}
	m.collectGarbage(ctx, r, status)
	return status, nil
}

// sandboxAttempt is the attempt of the sandbox the containers go into.
func (m *Manager) sandboxAttempt(status *podStatus, acts podActions) uint32 {
	if acts.CreateSandbox || len(status.Sandboxes) == 0 {
		return acts.Attempt
	}
	return status.Sandboxes[0].GetMetadata().GetAttempt()
}

// createSandbox is step 4: the sandbox config from the pod, then the
// runtime's sandbox, then its IPs.
func (m *Manager) createSandbox(ctx context.Context, r *podRun, attempt uint32) (string, error) {
	pod := r.pod
	cfg, warnings, err := generateSandboxConfig(pod, attempt, m.configOptions())
	for _, w := range warnings {
		m.event(podObject(pod), "Warning", "BerthUnsupported", "%s", w)
	}
	if err != nil {
		m.event(podObject(pod), "Warning", "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return "", err
	}
	if err := mkdirLogs(cfg.GetLogDirectory()); err != nil {
		return "", err
	}
	handler := ""
	if pod.Spec.RuntimeClassName != nil {
		// No API server holds RuntimeClasses here: the name is taken as
		// the runtime's handler.
		handler = *pod.Spec.RuntimeClassName
	}
	id, err := m.opts.Runtime.RunPodSandbox(ctx, cfg, handler)
	if err != nil {
		m.event(podObject(pod), "Warning", "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return "", fmt.Errorf("run sandbox of pod %q: %w", pod.Name, err)
	}
	st, err := m.opts.Runtime.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return id, fmt.Errorf("status of sandbox %q: %w", id, err)
	}
	r.setIPs(&podStatus{Sandboxes: []*runtimeapi.PodSandboxStatus{st.GetStatus()}})
	return id, nil
}

// setIPs takes the pod's IPs from its newest ready sandbox.
func (r *podRun) setIPs(status *podStatus) {
	for _, sb := range status.Sandboxes {
		if sb.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		net := sb.GetNetwork()
		r.podIP, r.ips = net.GetIp(), nil
		if r.podIP != "" {
			r.ips = append(r.ips, r.podIP)
		}
		for _, ip := range net.GetAdditionalIps() {
			r.ips = append(r.ips, ip.GetIp())
		}
		if r.pod.Spec.HostNetwork && r.podIP == "" && len(r.hostIPs) > 0 {
			r.podIP, r.ips = r.hostIPs[0], r.hostIPs
		}
		return
	}
}

func findID(status *podStatus, id string) *containerStatus {
	for _, c := range status.Containers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// specOf finds a container of the pod by name.
func specOf(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
