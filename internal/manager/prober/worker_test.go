package prober

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/manager/handler/handlertest"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// recorder keeps what a Prober reported.
type recorder struct {
	mu      sync.Mutex
	reports []string
	events  []string
}

func (r *recorder) report(id string, kind Kind, res Result, output string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, fmt.Sprintf("%s %s %s %q", id, kind, res, output))
}

func (r *recorder) event(id string, kind Kind, reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s %s: %s", id, kind, reason, msg))
}

func (r *recorder) got() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reports...), append([]string(nil), r.events...)
}

// script answers ExecSync from a per-command list of exit codes, the last
// one repeating; each code's output is "rc=<code>".
type script struct {
	mu    sync.Mutex
	codes map[string][]int
}

func (s *script) exec(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	s.mu.Lock()
	name := strings.Join(cmd, " ")
	codes := s.codes[name]
	code := codes[0]
	if len(codes) > 1 {
		s.codes[name] = codes[1:]
	}
	s.mu.Unlock()
	out := fmt.Sprintf("rc=%d", code)
	if code != 0 {
		return []byte(out), nil, handlertest.ExitError(cmd, code, "")
	}
	return []byte(out), nil, nil
}

func execProbe(cmd string, delay, period, failure int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}},
		InitialDelaySeconds: delay, PeriodSeconds: period, FailureThreshold: failure,
	}
}

type fixture struct {
	t     *testing.T
	rt    *handlertest.Runtime
	clock *clocktesting.FakeClock
	rec   *recorder
	p     *Prober
}

func newFixture(t *testing.T, codes map[string][]int) *fixture {
	f := &fixture{t: t, rt: handlertest.NewRuntime(), clock: clocktesting.NewFakeClock(time.Unix(1000, 0)), rec: &recorder{}}
	f.rt.SetExec((&script{codes: codes}).exec)
	var err error
	f.p, err = New(Options{Runtime: f.rt, Report: f.rec.report, Event: f.rec.event, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// calls counts the ExecSync calls of cmd.
func (f *fixture) calls(cmd string) int {
	n := 0
	for _, c := range f.rt.ExecCalls() {
		if strings.Join(c.Cmd, " ") == cmd {
			n++
		}
	}
	return n
}

// waitCalls waits (in real time) until cmd ran n times, then checks it
// does not run again on its own.
func (f *fixture) waitCalls(cmd string, n int) {
	f.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for f.calls(cmd) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	if got := f.calls(cmd); got != n {
		f.t.Fatalf("%s ran %d times, want %d", cmd, got, n)
	}
}

// waitWaiters waits until the workers sit on n timers or tickers.
func (f *fixture) waitWaiters(n int) {
	f.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for f.clock.Waiters() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := f.clock.Waiters(); got < n {
		f.t.Fatalf("%d clock waiters, want %d", got, n)
	}
}

func TestWorkerLiveness(t *testing.T) {
	f := newFixture(t, map[string][]int{"live": {0, 1, 1, 1}})
	c := &corev1.Container{Name: "app"}
	if err := f.p.Start(context.Background(), testPod, "", c, "c1", Liveness, execProbe("live", 5, 10, 3)); err != nil {
		t.Fatal(err)
	}
	defer f.p.Stop("c1")
	if got := f.p.Result("c1", Liveness); got != Success {
		t.Errorf("initial liveness = %v, want Success", got)
	}

	f.waitWaiters(1)
	f.clock.Step(4 * time.Second)
	f.waitCalls("live", 0) // still inside initialDelaySeconds
	f.clock.Step(time.Second)
	f.waitCalls("live", 1) // at 5s, then every 10s
	for i := 2; i <= 4; i++ {
		f.clock.Step(10 * time.Second)
		f.waitCalls("live", i)
	}
	// Failed: the worker stops probing this container.
	f.clock.Step(10 * time.Second)
	f.waitCalls("live", 4)

	reports, events := f.rec.got()
	if diff := cmp.Diff([]string{`c1 Liveness Failure "rc=1"`}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	wantEvents := []string{
		"c1 Liveness Unhealthy: Liveness probe failed: rc=1",
		"c1 Liveness Unhealthy: Liveness probe failed: rc=1",
		"c1 Liveness Unhealthy: Liveness probe failed: rc=1",
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := f.p.Result("c1", Liveness); got != Failure {
		t.Errorf("liveness = %v, want Failure", got)
	}
}

func TestWorkerStartupGatesReadiness(t *testing.T) {
	f := newFixture(t, map[string][]int{"start": {1, 0}, "ready": {0}})
	c := &corev1.Container{Name: "app", StartupProbe: execProbe("start", 0, 1, 10), ReadinessProbe: execProbe("ready", 0, 1, 3)}
	ctx := context.Background()
	if err := f.p.Start(ctx, testPod, "", c, "c1", Readiness, c.ReadinessProbe); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Start(ctx, testPod, "", c, "c1", Startup, c.StartupProbe); err != nil {
		t.Fatal(err)
	}
	defer f.p.Stop("c1")
	if got := f.p.Result("c1", Readiness); got != Failure {
		t.Errorf("initial readiness = %v, want Failure", got)
	}
	if got := f.p.Result("c1", Startup); got != Unknown {
		t.Errorf("initial startup = %v, want Unknown", got)
	}

	f.waitCalls("start", 1) // fails: below threshold
	f.waitCalls("ready", 0)
	f.clock.Step(time.Second)
	f.waitCalls("start", 2) // succeeds: readiness may begin
	f.waitCalls("ready", 1)
	f.clock.Step(time.Second)
	f.waitCalls("ready", 2)
	f.waitCalls("start", 2) // startup stopped after its success

	reports, _ := f.rec.got()
	want := []string{`c1 Startup Success "rc=0"`, `c1 Readiness Success "rc=0"`}
	if diff := cmp.Diff(want, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

func TestStartupSucceededReleasesLiveness(t *testing.T) {
	f := newFixture(t, map[string][]int{"live": {0}})
	c := &corev1.Container{Name: "app", StartupProbe: execProbe("start", 0, 1, 1)}
	if err := f.p.Start(context.Background(), testPod, "", c, "c1", Liveness, execProbe("live", 0, 1, 1)); err != nil {
		t.Fatal(err)
	}
	defer f.p.Stop("c1")
	f.waitCalls("live", 0)
	f.p.StartupSucceeded("c1")
	f.waitCalls("live", 1)
}

func TestStopEndsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFixture(t, nil)
	blocked := make(chan struct{})
	f.rt.SetExec(func(ctx context.Context, _ string, _ []string, _ time.Duration) ([]byte, []byte, error) {
		close(blocked)
		<-ctx.Done() // a probe in flight when Stop comes
		return nil, nil, ctx.Err()
	})
	c := &corev1.Container{Name: "app"}
	for _, k := range []Kind{Liveness, Readiness} {
		if err := f.p.Start(context.Background(), testPod, "", c, "c1", k, execProbe("x", 100, 10, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.p.Start(context.Background(), testPod, "", c, "c2", Liveness, execProbe("y", 0, 10, 1)); err != nil {
		t.Fatal(err)
	}
	<-blocked
	f.p.Stop("c1")
	f.p.Stop("c2")
	f.p.Stop("c3") // unknown: no-op
	if got := f.p.Result("c2", Liveness); got != Unknown {
		t.Errorf("result after Stop = %v, want Unknown", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Stop, %d before", n, before)
	}
	if reports, events := f.rec.got(); len(reports)+len(events) != 0 {
		t.Errorf("reports %v, events %v after a stopped probe", reports, events)
	}
}

func TestStartErrors(t *testing.T) {
	f := newFixture(t, map[string][]int{"x": {0}})
	c := &corev1.Container{Name: "app"}
	p := execProbe("x", 0, 10, 1)
	p.SuccessThreshold = 2
	err := f.p.Start(context.Background(), testPod, "", c, "c1", Liveness, p)
	if err == nil || err.Error() != `container "app": livenessProbe.successThreshold: must be 1, got 2` {
		t.Errorf("err = %v", err)
	}
	if err := f.p.Start(context.Background(), testPod, "", c, "c1", Readiness, execProbe("x", 100, 10, 1)); err != nil {
		t.Fatal(err)
	}
	defer f.p.Stop("c1")
	if err := f.p.Start(context.Background(), testPod, "", c, "c1", Readiness, execProbe("x", 100, 10, 1)); err == nil {
		t.Error("second readiness worker for c1: no error")
	}
}

func TestContextEndsWorker(t *testing.T) {
	f := newFixture(t, map[string][]int{"x": {0}})
	ctx, cancel := context.WithCancel(context.Background())
	if err := f.p.Start(ctx, testPod, "", &corev1.Container{Name: "app"}, "c1", Readiness, execProbe("x", 0, 10, 1)); err != nil {
		t.Fatal(err)
	}
	f.waitCalls("x", 1)
	cancel()
	f.clock.Step(10 * time.Second)
	f.waitCalls("x", 1)
	// The result stays until Stop.
	if got := f.p.Result("c1", Readiness); got != Success {
		t.Errorf("readiness = %v, want Success", got)
	}
	f.p.Stop("c1")
}
