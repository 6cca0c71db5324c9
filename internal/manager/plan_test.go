package manager

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
)

func testPod(policy corev1.RestartPolicy, inits []corev1.Container, names ...string) *corev1.Pod {
	p := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy, InitContainers: inits}}
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
	}
	return p
}

func sidecar(name string) corev1.Container {
	always := corev1.ContainerRestartPolicyAlways
	return corev1.Container{Name: name, RestartPolicy: &always}
}

func sandboxes(states ...runtimeapi.PodSandboxState) []*runtimeapi.PodSandboxStatus {
	var out []*runtimeapi.PodSandboxStatus
	for i, s := range states {
		out = append(out, &runtimeapi.PodSandboxStatus{
			Id:       "sb" + string(rune('0'+len(states)-1-i)),
			Metadata: &runtimeapi.PodSandboxMetadata{Attempt: uint32(len(states) - 1 - i)},
			State:    s,
		})
	}
	return out
}

var (
	ready    = runtimeapi.PodSandboxState_SANDBOX_READY
	notReady = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
)

func ctr(name string, state runtimeapi.ContainerState, exit int32) *containerStatus {
	return &containerStatus{ID: name + "-id", Name: name, State: state, ExitCode: exit, Hash: "h"}
}

func TestComputeActions(t *testing.T) {
	hash := func(*corev1.Container) string { return "h" }
	kill := func(name, msg string) map[string]containerToKill {
		return map[string]containerToKill{name + "-id": {Name: name, Reason: "Killing", Message: msg}}
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		status podStatus
		probes probeResults
		hash   func(*corev1.Container) string
		want   podActions
	}{{
		name: "new pod: sandbox and every container",
		pod:  testPod(corev1.RestartPolicyAlways, nil, "a", "b"),
		want: podActions{KillPod: true, CreateSandbox: true, ContainersToStart: []int{0, 1}},
	}, {
		name: "new pod with init containers: the first init only",
		pod:  testPod(corev1.RestartPolicyAlways, []corev1.Container{{Name: "i1"}, {Name: "i2"}}, "a"),
		want: podActions{KillPod: true, CreateSandbox: true, InitContainersToStart: []int{0}},
	}, {
		name:   "steady: nothing",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", running, 0)}},
		want:   podActions{SandboxID: "sb0"},
	}, {
		name:   "sandbox died: a new attempt, everything again",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(notReady), Containers: []*containerStatus{ctr("a", exited, 137)}},
		want:   podActions{KillPod: true, CreateSandbox: true, SandboxID: "sb0", Attempt: 1, ContainersToStart: []int{0}},
	}, {
		name:   "sandbox died, restartPolicy Never: kill, no new sandbox",
		pod:    testPod(corev1.RestartPolicyNever, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(notReady), Containers: []*containerStatus{ctr("a", exited, 0)}},
		want:   podActions{KillPod: true, SandboxID: "sb0", Attempt: 1},
	}, {
		name:   "sandbox died, OnFailure, all succeeded: no new sandbox",
		pod:    testPod(corev1.RestartPolicyOnFailure, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(notReady), Containers: []*containerStatus{ctr("a", exited, 0)}},
		want:   podActions{KillPod: true, SandboxID: "sb0", Attempt: 1},
	}, {
		name:   "two ready sandboxes: a new one",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(ready, ready)},
		want:   podActions{KillPod: true, CreateSandbox: true, SandboxID: "sb1", Attempt: 2, ContainersToStart: []int{0}},
	}, {
		name:   "Always: an exited container restarts",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "a", "b"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", exited, 0), ctr("b", running, 0)}},
		want:   podActions{SandboxID: "sb0", ContainersToStart: []int{0}},
	}, {
		name:   "OnFailure: exit 0 stays, exit 1 restarts",
		pod:    testPod(corev1.RestartPolicyOnFailure, nil, "a", "b", "c"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", exited, 0), ctr("b", exited, 1), ctr("c", running, 0)}},
		want:   podActions{SandboxID: "sb0", ContainersToStart: []int{1}},
	}, {
		name:   "Never: exited stays; one still running keeps the pod",
		pod:    testPod(corev1.RestartPolicyNever, nil, "a", "b"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", exited, 3), ctr("b", running, 0)}},
		want:   podActions{SandboxID: "sb0"},
	}, {
		name:   "Never: all exited, the pod is over",
		pod:    testPod(corev1.RestartPolicyNever, nil, "a", "b"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", exited, 3), ctr("b", exited, 0)}},
		want:   podActions{KillPod: true, SandboxID: "sb0"},
	}, {
		name:   "created but never started: start it",
		pod:    testPod(corev1.RestartPolicyNever, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", created, 0)}},
		want:   podActions{SandboxID: "sb0", ContainersToStart: []int{0}},
	}, {
		name:   "liveness failed: kill and restart",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "a", "b"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", running, 0), ctr("b", running, 0)}},
		probes: probeResults{LivenessFailed: map[string]bool{"a-id": true}},
		want: podActions{SandboxID: "sb0", ContainersToStart: []int{0},
			ContainersToKill: kill("a", "Container a failed liveness probe, will be restarted")},
	}, {
		name:   "liveness failed under Never: kill only, and the pod ends",
		pod:    testPod(corev1.RestartPolicyNever, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", running, 0)}},
		probes: probeResults{LivenessFailed: map[string]bool{"a-id": true}},
		want:   podActions{KillPod: true, SandboxID: "sb0", ContainersToKill: kill("a", "Container a failed liveness probe")},
	}, {
		name:   "startup probe failed: kill and restart",
		pod:    testPod(corev1.RestartPolicyAlways, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", running, 0)}},
		probes: probeResults{StartupFailed: map[string]bool{"a-id": true}},
		want: podActions{SandboxID: "sb0", ContainersToStart: []int{0},
			ContainersToKill: kill("a", "Container a failed startup probe, will be restarted")},
	}, {
		name:   "spec changed: restart even under Never",
		pod:    testPod(corev1.RestartPolicyNever, nil, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("a", running, 0)}},
		hash:   func(*corev1.Container) string { return "other" },
		want: podActions{SandboxID: "sb0", ContainersToStart: []int{0},
			ContainersToKill: kill("a", "Container a definition changed, will be restarted")},
	}, {
		name:   "init: first running, wait",
		pod:    testPod(corev1.RestartPolicyAlways, []corev1.Container{{Name: "i1"}, {Name: "i2"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("i1", running, 0)}},
		want:   podActions{SandboxID: "sb0"},
	}, {
		name:   "init: first done, second next",
		pod:    testPod(corev1.RestartPolicyAlways, []corev1.Container{{Name: "i1"}, {Name: "i2"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("i1", exited, 0)}},
		want:   podActions{SandboxID: "sb0", InitContainersToStart: []int{1}},
	}, {
		name:   "init failed, Always: run it again",
		pod:    testPod(corev1.RestartPolicyAlways, []corev1.Container{{Name: "i1"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("i1", exited, 2)}},
		want:   podActions{SandboxID: "sb0", InitContainersToStart: []int{0}},
	}, {
		name:   "init failed, Never: the pod is over",
		pod:    testPod(corev1.RestartPolicyNever, []corev1.Container{{Name: "i1"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("i1", exited, 2)}},
		want:   podActions{KillPod: true, SandboxID: "sb0"},
	}, {
		name:   "init all done: app containers",
		pod:    testPod(corev1.RestartPolicyAlways, []corev1.Container{{Name: "i1"}}, "a", "b"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("i1", exited, 0)}},
		want:   podActions{SandboxID: "sb0", ContainersToStart: []int{0, 1}},
	}, {
		name:   "sidecar running but not started: wait",
		pod:    testPod(corev1.RestartPolicyAlways, []corev1.Container{sidecar("s"), {Name: "i1"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("s", running, 0)}},
		want:   podActions{SandboxID: "sb0"},
	}, {
		name:   "sidecar started: the next init container",
		pod:    testPod(corev1.RestartPolicyAlways, []corev1.Container{sidecar("s"), {Name: "i1"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{ctr("s", running, 0)}},
		probes: probeResults{Started: map[string]bool{"s-id": true}},
		want:   podActions{SandboxID: "sb0", InitContainersToStart: []int{1}},
	}, {
		name: "sidecar exited after init: restarted, app containers keep running",
		pod:  testPod(corev1.RestartPolicyNever, []corev1.Container{sidecar("s"), {Name: "i1"}}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{
			ctr("s", exited, 1), ctr("i1", exited, 0), ctr("a", running, 0)}},
		want: podActions{SandboxID: "sb0", InitContainersToStart: []int{0}},
	}, {
		name: "app containers done under Never: sidecars go with the pod",
		pod:  testPod(corev1.RestartPolicyNever, []corev1.Container{sidecar("s")}, "a"),
		status: podStatus{Sandboxes: sandboxes(ready), Containers: []*containerStatus{
			ctr("s", running, 0), ctr("a", exited, 0)}},
		probes: probeResults{Started: map[string]bool{"s-id": true}},
		want:   podActions{KillPod: true, SandboxID: "sb0"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.hash
			if h == nil {
				h = hash
			}
			got := computeActions(tt.pod, &tt.status, tt.probes, h)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("computeActions (-want +got):\n%s", diff)
			}
		})
	}
}
