package manager

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podStatus is the pod's status as the kubelet would report it: phase,
// conditions, IPs and each container's state.
func (m *Manager) podStatus(r *podRun, status *podStatus) corev1.PodStatus {
	pod := r.pod
	out := corev1.PodStatus{PodIP: r.podIP, QOSClass: podQOS(pod)}
	for _, ip := range r.ips {
		out.PodIPs = append(out.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(m.opts.Node.HostIPs) > 0 {
		out.HostIP = m.opts.Node.HostIPs[0]
		for _, ip := range m.opts.Node.HostIPs {
			out.HostIPs = append(out.HostIPs, corev1.HostIP{IP: ip})
		}
	}
	if len(status.Sandboxes) > 0 {
		t := v1.NewTime(time.Unix(0, status.Sandboxes[len(status.Sandboxes)-1].GetCreatedAt()))
		out.StartTime = &t
	}
	for i := range pod.Spec.InitContainers {
		out.InitContainerStatuses = append(out.InitContainerStatuses, m.containerStatus(pod, &pod.Spec.InitContainers[i], status, reasonInitializing))
	}
	for i := range pod.Spec.Containers {
		out.ContainerStatuses = append(out.ContainerStatuses, m.containerStatus(pod, &pod.Spec.Containers[i], status, reasonCreating))
	}
	out.Phase = podPhase(pod, out.InitContainerStatuses, out.ContainerStatuses)
	out.Conditions = conditions(pod, &out, len(status.Sandboxes) > 0 && status.Sandboxes[0].GetState() == runtimeapi.PodSandboxState_SANDBOX_READY)
	return out
}

// containerStatus converts the newest attempts of one container.
func (m *Manager) containerStatus(pod *corev1.Pod, c *corev1.Container, status *podStatus, pending string) corev1.ContainerStatus {
	out := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	var attempts []*containerStatus
	for _, cs := range status.Containers {
		if cs.Name == c.Name {
			attempts = append(attempts, cs)
		}
	}
	w, waiting := m.waitingOf(c.Name)
	if len(attempts) == 0 {
		if !waiting {
			w = waitingReason{Reason: pending}
		}
		out.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		return out
	}
	cur := attempts[0]
	out.ContainerID = m.runtimeName() + "://" + cur.ID
	out.ImageID = cur.ImageRef
	out.RestartCount = int32(cur.Attempt)
	out.State = m.stateOf(pod, c, cur)
	if len(attempts) > 1 {
		out.LastTerminationState = m.stateOf(pod, c, attempts[1])
	}
	running := cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	if !running && waiting && shouldRestart(pod, cur) {
		// Waiting to run again: the last run becomes the last state.
		out.LastTerminationState = out.State
		out.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}}
	}
	started := running && m.probe.isStarted(cur.ID)
	out.Started = &started
	out.Ready = running && started && m.probe.isReady(cur.ID)
	return out
}

func (m *Manager) stateOf(pod *corev1.Pod, c *corev1.Container, cs *containerStatus) corev1.ContainerState {
	switch cs.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: v1.NewTime(cs.StartedAt)}}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		reason := cs.Reason
		if reason == "" {
			reason = "Error"
			if cs.ExitCode == 0 {
				reason = "Completed"
			}
		}
		msg := cs.Message
		if msg == "" {
			msg = m.terminationMessage(pod, c, cs)
		}
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: cs.ExitCode, Reason: reason, Message: msg,
			StartedAt: v1.NewTime(cs.StartedAt), FinishedAt: v1.NewTime(cs.FinishedAt),
			ContainerID: m.runtimeName() + "://" + cs.ID,
		}}
	}
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonCreating}}
}

// podPhase is the kubelet's getPhase.
func podPhase(pod *corev1.Pod, inits, ctrs []corev1.ContainerStatus) corev1.PodPhase {
	for i, s := range inits {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			continue
		}
		switch {
		case s.State.Terminated != nil && s.State.Terminated.ExitCode == 0:
			continue
		case s.State.Terminated != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		default:
			return corev1.PodPending
		}
	}
	var waiting, running, stopped, succeeded int
	for _, s := range ctrs {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
		return corev1.PodRunning
	case stopped > 0 && stopped == succeeded:
		return corev1.PodSucceeded
	case stopped > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
		return corev1.PodFailed
	case stopped > 0:
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// conditions are PodScheduled, Initialized, ContainersReady, Ready and
// PodReadyToStartContainers.
func conditions(pod *corev1.Pod, st *corev1.PodStatus, sandboxReady bool) []corev1.PodCondition {
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s}
	}
	initialized := true
	for i, s := range st.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			initialized = initialized && s.State.Running != nil
			continue
		}
		initialized = initialized && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
	}
	ready := len(st.ContainerStatuses) > 0
	for _, s := range st.ContainerStatuses {
		ready = ready && s.Ready
	}
	return []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sandboxReady),
		cond(corev1.PodInitialized, initialized || st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed),
		cond(corev1.ContainersReady, ready),
		cond(corev1.PodReady, ready),
		cond(corev1.PodScheduled, true),
	}
}
