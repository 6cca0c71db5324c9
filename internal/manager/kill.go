package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/manager/lifecycle"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// minGrace is the least time a container gets to stop after its
// PreStop hook, as the kubelet's minimumGracePeriodInSeconds.
const minGrace = 2 * time.Second

// killContainer runs the container's PreStop hook, then stops it within
// what is left of the pod's grace period. c may be nil when the spec no
// longer names the container. reason, if set, is the Killing event's
// message.
func (m *Manager) killContainer(ctx context.Context, r *podRun, cs *containerStatus, c *corev1.Container, reason string) error {
	pod := r.pod
	if c == nil {
		c = specOf(pod, cs.Name)
	}
	obj := containerObject(pod, cs.Name)
	msg := "Stopping container " + cs.Name
	if reason != "" {
		msg = reason
	}
	m.event(obj, "Normal", "Killing", "%s", msg)
	m.stopProbes(cs.ID)
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	if h := preStop(c); h != nil && cs.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		start := m.opts.Clock()
		hctx, cancel := context.WithTimeout(ctx, grace)
		out, err := m.hooks.Run(hctx, pod, r.podIP, c, cs.ID, h, grace)
		cancel()
		if err != nil {
			m.event(obj, "Warning", "FailedPreStopHook", "%s", lifecycle.Message(pod, c, h, out, err))
		}
		grace -= m.opts.Clock().Sub(start)
	}
	grace = max(grace, minGrace)
	if err := m.opts.Runtime.StopContainer(ctx, cs.ID, int64(grace/time.Second)); err != nil && !isNotFound(err) {
		return fmt.Errorf("stop container %q: %w", cs.Name, err)
	}
	return nil
}

// killPod stops every running container, the app containers together and
// then the sidecars in reverse order (as the kubelet since 1.29), then
// every sandbox of the pod. status nil means ask the runtime.
func (m *Manager) killPod(ctx context.Context, r *podRun, status *podStatus) error {
	pod := r.pod
	if status == nil {
		var err error
		if status, err = getPodStatus(ctx, m.opts.Runtime, pod); err != nil {
			return err
		}
	}
	var apps, sidecars []*containerStatus
	for _, cs := range status.Containers {
		if cs.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if c := specOf(pod, cs.Name); c != nil && isSidecar(c) {
			sidecars = append(sidecars, cs)
		} else {
			apps = append(apps, cs)
		}
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, cs := range apps {
		wg.Go(func() {
			if err := m.killContainer(ctx, r, cs, nil, ""); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sidecarOrder(pod, sidecars)
	for _, cs := range sidecars {
		if err := m.killContainer(ctx, r, cs, nil, ""); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sb := range status.Sandboxes {
		if sb.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if err := m.opts.Runtime.StopPodSandbox(ctx, sb.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %q: %w", sb.GetId(), err))
		}
	}
	return errors.Join(errs...)
}

// sidecarOrder sorts running sidecars last-declared first.
func sidecarOrder(pod *corev1.Pod, cs []*containerStatus) {
	index := map[string]int{}
	for i, c := range pod.Spec.InitContainers {
		index[c.Name] = i
	}
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && index[cs[j].Name] > index[cs[j-1].Name]; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}
