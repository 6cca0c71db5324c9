package manager

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/manager/podenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// fakeHost is a Manager over the cri-api fakes, as kuberuntime's tests
// use them, recording events.
type fakeHost struct {
	rt     *critest.FakeRuntimeService
	img    *critest.FakeImageService
	m      *Manager
	mu     sync.Mutex
	events []Event
}

func newFakeHost(t *testing.T, backOff time.Duration) *fakeHost {
	t.Helper()
	h := &fakeHost{rt: critest.NewFakeRuntimeService(), img: critest.NewFakeImageService()}
	dir := t.TempDir()
	m, err := New(Options{
		Runtime: h.rt, Images: h.img,
		PodLogsDir: dir + "/pods", StateDir: dir + "/state", ResolvConf: "/dev/null",
		Events: func(e Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, e)
		},
		SyncPeriod: 10 * time.Millisecond, BackOff: backOff, BackOffMax: 4 * backOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

func (h *fakeHost) reasons() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Reason+" "+e.Object)
	}
	return out
}

// exitRunning makes every running container named name exit with code,
// as if its process ended, and reports how many it found.
func (h *fakeHost) exitRunning(name string, code int32) int {
	h.rt.Lock()
	defer h.rt.Unlock()
	n := 0
	for _, c := range h.rt.Containers {
		if c.Metadata.Name == name && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.State = runtimeapi.ContainerState_CONTAINER_EXITED
			c.ExitCode = code
			c.FinishedAt = time.Now().UnixNano()
			n++
		}
	}
	return n
}

func (h *fakeHost) starts(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Reason == "Started" && strings.HasSuffix(e.Object, "{"+name+"}") {
			n++
		}
	}
	return n
}

func testManifest(policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: v1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1"},
		Spec: corev1.PodSpec{
			RestartPolicy:  policy,
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
			Containers:     []corev1.Container{{Name: "app", Image: "busybox:1.36"}},
		},
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunToSuccess: sandbox, pull, the init container to its end, then
// the app; when the app exits 0 under Never the pod Succeeds and the
// sandbox is stopped.
func TestRunToSuccess(t *testing.T) {
	h := newFakeHost(t, time.Second)
	type result struct {
		pod *corev1.Pod
		err error
	}
	done := make(chan result, 1)
	go func() {
		pod, err := h.m.Run(context.Background(), testManifest(corev1.RestartPolicyNever), emptyObjects())
		done <- result{pod, err}
	}()
	waitFor(t, "init to start", func() bool { return h.starts("init") == 1 })
	if h.starts("app") != 0 {
		t.Fatal("app started before init ended")
	}
	h.exitRunning("init", 0)
	waitFor(t, "app to start", func() bool { return h.starts("app") == 1 })
	h.exitRunning("app", 0)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.pod.Status.Phase != corev1.PodSucceeded {
		t.Errorf("phase %s, want Succeeded", r.pod.Status.Phase)
	}
	want := []string{
		"Pulling spec.initContainers{init}", "Pulled spec.initContainers{init}",
		"Created spec.initContainers{init}", "Started spec.initContainers{init}",
		"Pulled spec.containers{app}", "Created spec.containers{app}", "Started spec.containers{app}",
	}
	got := slices.DeleteFunc(h.reasons(), func(s string) bool { return strings.HasPrefix(s, "BerthUnsupported") })
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	calls := h.rt.GetCalls()
	if i, j := slices.Index(calls, "RunPodSandbox"), slices.Index(calls, "StopPodSandbox"); i < 0 || j < i {
		t.Errorf("calls %v: want RunPodSandbox, later StopPodSandbox", calls)
	}
	if slices.Contains(calls, "RemovePodSandbox") {
		t.Error("the sandbox was removed without --rm")
	}
}

// TestRunCrashLoop: under Always a container that keeps failing restarts
// at once the first time, then waits its back-off (BackOff event).
func TestRunCrashLoop(t *testing.T) {
	const backOff = 300 * time.Millisecond
	h := newFakeHost(t, backOff)
	pod := testManifest(corev1.RestartPolicyAlways)
	pod.Spec.InitContainers = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *corev1.Pod, 1)
	go func() {
		p, _ := h.m.Run(ctx, pod, emptyObjects())
		done <- p
	}()
	waitFor(t, "first start", func() bool { return h.starts("app") == 1 })
	h.exitRunning("app", 1)
	waitFor(t, "immediate restart", func() bool { return h.starts("app") == 2 })
	exited := time.Now()
	h.exitRunning("app", 1)
	waitFor(t, "restart after back-off", func() bool { return h.starts("app") == 3 })
	if waited := time.Since(exited); waited < backOff-20*time.Millisecond {
		t.Errorf("restarted %v after the second exit, want ≥ %v", waited, backOff)
	}
	if !slices.Contains(h.reasons(), "BackOff spec.containers{app}") {
		t.Errorf("no BackOff event: %q", h.reasons())
	}
	cancel()
	p := <-done
	st := p.Status.ContainerStatuses[0]
	if st.RestartCount != 2 || st.LastTerminationState.Terminated == nil || st.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("status %+v: want restart count 2 and a last state exited 1", st)
	}
}

// TestRunInitFailsNever: a failing init container under Never fails the
// pod; the app never starts.
func TestRunInitFailsNever(t *testing.T) {
	h := newFakeHost(t, time.Second)
	done := make(chan *corev1.Pod, 1)
	go func() {
		p, _ := h.m.Run(context.Background(), testManifest(corev1.RestartPolicyNever), emptyObjects())
		done <- p
	}()
	waitFor(t, "init to start", func() bool { return h.starts("init") == 1 })
	h.exitRunning("init", 2)
	p := <-done
	if p.Status.Phase != corev1.PodFailed || h.starts("app") != 0 {
		t.Errorf("phase %s, app started %d times: want Failed and never", p.Status.Phase, h.starts("app"))
	}
}

// TestRunRefusesBadPod: admission errors name the field and nothing is
// created.
func TestRunRefusesBadPod(t *testing.T) {
	h := newFakeHost(t, time.Second)
	pod := testManifest(corev1.RestartPolicyNever)
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	_, err := h.m.Run(context.Background(), pod, emptyObjects())
	if err == nil || !strings.Contains(err.Error(), "spec.containers[0].livenessProbe.successThreshold") {
		t.Errorf("Run = %v, want an error naming spec.containers[0].livenessProbe.successThreshold", err)
	}
	if calls := h.rt.GetCalls(); slices.Contains(calls, "RunPodSandbox") {
		t.Errorf("calls %v after a refused pod", calls)
	}
}

func emptyObjects() podenv.Objects { return podenv.Objects{} }
