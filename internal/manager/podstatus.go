package manager

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// getPodStatus asks the runtime for every sandbox and container it holds
// for the pod's UID, as the kubelet's GetPodStatus does.
func getPodStatus(ctx context.Context, rt internalapi.RuntimeService, pod *corev1.Pod) (*podStatus, error) {
	uid := string(pod.UID)
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: uid}})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes of pod %q: %w", pod.Name, err)
	}
	sort.Slice(sbs, func(i, j int) bool { return sbs[i].GetCreatedAt() > sbs[j].GetCreatedAt() })
	st := &podStatus{}
	for _, sb := range sbs {
		s, err := rt.PodSandboxStatus(ctx, sb.GetId(), false)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("status of sandbox %q: %w", sb.GetId(), err)
		}
		st.Sandboxes = append(st.Sandboxes, s.GetStatus())
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{labelPodUID: uid}})
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %q: %w", pod.Name, err)
	}
	for _, c := range cs {
		r, err := rt.ContainerStatus(ctx, c.GetId(), false)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("status of container %q: %w", c.GetId(), err)
		}
		st.Containers = append(st.Containers, fromCRI(r.GetStatus()))
	}
	// Newest attempt first; equal attempts (a sandbox change restarts
	// the count) by creation time.
	sort.SliceStable(st.Containers, func(i, j int) bool {
		a, b := st.Containers[i], st.Containers[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.Attempt > b.Attempt
	})
	return st, nil
}

func fromCRI(s *runtimeapi.ContainerStatus) *containerStatus {
	ts := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns)
	}
	return &containerStatus{
		ID:          s.GetId(),
		Name:        s.GetMetadata().GetName(),
		Attempt:     s.GetMetadata().GetAttempt(),
		State:       s.GetState(),
		CreatedAt:   ts(s.GetCreatedAt()),
		StartedAt:   ts(s.GetStartedAt()),
		FinishedAt:  ts(s.GetFinishedAt()),
		ExitCode:    s.GetExitCode(),
		Reason:      s.GetReason(),
		Message:     s.GetMessage(),
		Image:       s.GetImage().GetImage(),
		ImageRef:    s.GetImageRef(),
		Hash:        s.GetAnnotations()[annotationContainerHash],
		annotations: s.GetAnnotations(),
	}
}
