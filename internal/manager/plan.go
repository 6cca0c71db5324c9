package manager

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// computeActions is step 1 of a sync: from the Pod and what the runtime
// reports, what to kill, whether to make a sandbox, and which containers
// to start. It does nothing itself. hash is the spec hash of a container
// (containerHash); a running container whose hash differs is restarted.
func computeActions(pod *corev1.Pod, status *podStatus, probes probeResults, hash func(*corev1.Container) string) podActions {
	create, attempt, sandboxID := sandboxChanged(status)
	acts := podActions{
		KillPod:          create,
		CreateSandbox:    create,
		SandboxID:        sandboxID,
		Attempt:          attempt,
		ContainersToKill: map[string]containerToKill{},
	}
	if create {
		// A sandbox that died after its containers were made is not
		// replaced when nothing may restart: the pod is over.
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever && attempt != 0 && len(status.Containers) != 0 {
			acts.CreateSandbox = false
			return acts
		}
		var toStart []int
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			if pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && succeeded(status.find(c.Name)) {
				continue
			}
			toStart = append(toStart, i)
		}
		if len(toStart) == 0 && initDone(pod, status) {
			acts.CreateSandbox = false
			return acts
		}
		if len(pod.Spec.InitContainers) != 0 {
			acts.InitContainersToStart = []int{0}
			return acts
		}
		acts.ContainersToStart = toStart
		return acts
	}

	initialized := initActions(pod, status, probes, &acts)
	if acts.KillPod || !initialized {
		return acts
	}

	keep := 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := status.find(c.Name)
		if cs == nil || cs.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			if shouldRestart(pod, cs) {
				acts.ContainersToStart = append(acts.ContainersToStart, i)
			}
			continue
		}
		restart := pod.Spec.RestartPolicy != corev1.RestartPolicyNever
		var msg string
		switch {
		case cs.Hash != "" && cs.Hash != hash(c):
			msg = fmt.Sprintf("Container %s definition changed", c.Name)
			restart = true
		case probes.LivenessFailed[cs.ID]:
			msg = fmt.Sprintf("Container %s failed liveness probe", c.Name)
		case probes.StartupFailed[cs.ID]:
			msg = fmt.Sprintf("Container %s failed startup probe", c.Name)
		default:
			keep++
			continue
		}
		if restart {
			msg += ", will be restarted"
			acts.ContainersToStart = append(acts.ContainersToStart, i)
		}
		acts.ContainersToKill[cs.ID] = containerToKill{Name: c.Name, Reason: "Killing", Message: msg}
	}
	if keep == 0 && len(acts.ContainersToStart) == 0 {
		// Nothing runs and nothing will: the pod is over, sidecars and
		// sandbox go too.
		acts.KillPod = true
	}
	return acts
}

// sandboxChanged says whether the pod needs a new sandbox, with which
// attempt, and otherwise which sandbox it runs in. status.Sandboxes is
// newest first.
func sandboxChanged(status *podStatus) (create bool, attempt uint32, sandboxID string) {
	if len(status.Sandboxes) == 0 {
		return true, 0, ""
	}
	ready := 0
	for _, s := range status.Sandboxes {
		if s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready++
		}
	}
	newest := status.Sandboxes[0]
	next := newest.GetMetadata().GetAttempt() + 1
	if ready > 1 || newest.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return true, next, newest.GetId()
	}
	return false, newest.GetMetadata().GetAttempt(), newest.GetId()
}

// initActions adds the init containers to start to acts and reports
// whether initialization is done. Regular init containers run one at a
// time, each to success; restartable ones (sidecars) start in their place
// in the order and are kept running, the next one waiting until the
// sidecar has started (its startup probe passed).
func initActions(pod *corev1.Pod, status *podStatus, probes probeResults, acts *podActions) bool {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := status.find(c.Name)
		if isSidecar(c) {
			switch {
			case cs == nil:
				acts.InitContainersToStart = append(acts.InitContainersToStart, i)
				return false
			case cs.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
				if probes.StartupFailed[cs.ID] {
					acts.ContainersToKill[cs.ID] = containerToKill{Name: c.Name, Reason: "Killing",
						Message: fmt.Sprintf("Init container %s failed startup probe, will be restarted", c.Name)}
					acts.InitContainersToStart = append(acts.InitContainersToStart, i)
					return false
				}
				if !probes.Started[cs.ID] {
					return false
				}
				if probes.LivenessFailed[cs.ID] {
					acts.ContainersToKill[cs.ID] = containerToKill{Name: c.Name, Reason: "Killing",
						Message: fmt.Sprintf("Init container %s failed liveness probe, will be restarted", c.Name)}
					acts.InitContainersToStart = append(acts.InitContainersToStart, i)
				}
			default:
				// A sidecar that stopped restarts whatever the pod's
				// restart policy.
				acts.InitContainersToStart = append(acts.InitContainersToStart, i)
			}
			continue
		}
		switch {
		case cs == nil, cs.State == runtimeapi.ContainerState_CONTAINER_CREATED, cs.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			acts.InitContainersToStart = append(acts.InitContainersToStart, i)
			return false
		case cs.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			return false
		case cs.ExitCode == 0:
			continue
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			// A failed init container fails the pod.
			acts.KillPod = true
			return false
		default:
			acts.InitContainersToStart = append(acts.InitContainersToStart, i)
			return false
		}
	}
	return true
}

// initDone: every regular init container has succeeded.
func initDone(pod *corev1.Pod, status *podStatus) bool {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !isSidecar(c) && !succeeded(status.find(c.Name)) {
			return false
		}
	}
	return true
}

// shouldRestart is the kubelet's ShouldContainerBeRestarted for a
// container that is not running.
func shouldRestart(pod *corev1.Pod, cs *containerStatus) bool {
	switch {
	case cs == nil:
		return true
	case cs.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
		return false
	case cs.State == runtimeapi.ContainerState_CONTAINER_CREATED, cs.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		return true
	case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
		return false
	case pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && cs.ExitCode == 0:
		return false
	}
	return true
}

func succeeded(cs *containerStatus) bool {
	return cs != nil && cs.State == runtimeapi.ContainerState_CONTAINER_EXITED && cs.ExitCode == 0
}

// isSidecar: an init container with restartPolicy Always.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
