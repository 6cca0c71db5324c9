package images

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentCallsShareOnePull(t *testing.T) {
	const callers = 5
	clock := newFakeClock()
	svc := newService(clock)
	svc.gate = make(chan struct{})
	m, ev := newTestManager(t, svc, clock)

	refs := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &corev1.Container{Name: "app", Image: "busybox:1.36"}
			refs[i], errs[i] = m.EnsureImageExists(context.Background(), testPod(), c, nil, nil)
		}()
	}
	waitFor(t, "every caller to wait on the pull", func() bool { return m.flights.waiting("busybox:1.36") == callers })
	close(svc.gate)
	wg.Wait()

	for i := range callers {
		if errs[i] != nil || refs[i] != "busybox:1.36" {
			t.Errorf("caller %d: %q, %v", i, refs[i], errs[i])
		}
	}
	if n := len(svc.pullCalls()); n != 1 {
		t.Errorf("%d PullImage calls, want 1", n)
	}
	count := map[string]int{}
	for _, e := range ev.take() {
		count[e.Reason]++
	}
	if count["Pulling"] != callers || count["Pulled"] != callers {
		t.Errorf("events by reason = %v, want %d Pulling and %d Pulled", count, callers, callers)
	}
}

func TestConcurrentFailureBacksOffOnce(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	svc.gate = make(chan struct{})
	svc.InjectError("PullImage", errors.New("boom"))
	m, _ := newTestManager(t, svc, clock)

	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &corev1.Container{Name: "app", Image: "busybox:1.36"}
			if _, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, nil); reasonOf(t, err) != ReasonErrImagePull {
				t.Errorf("err = %v, want ErrImagePull", err)
			}
		}()
	}
	waitFor(t, "both callers to wait", func() bool { return m.flights.waiting("busybox:1.36") == 2 })
	close(svc.gate)
	wg.Wait()

	// One failure, so the window is the initial 10s, not 20s.
	clock.Step(10 * time.Second)
	if in, _ := m.backOff.check("busybox:1.36", clock.Now()); in {
		t.Error("in back-off after 10s: the shared failure was counted twice")
	}
}

func TestCallerLeavingDoesNotCancelOthers(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	svc.gate = make(chan struct{})
	m, _ := newTestManager(t, svc, clock)
	c := &corev1.Container{Name: "app", Image: "busybox:1.36"}

	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := m.EnsureImageExists(ctx, testPod(), c, nil, nil)
		firstErr <- err
	}()
	waitFor(t, "the first caller to start the pull", func() bool { return m.flights.waiting("busybox:1.36") == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, nil)
		second <- err
	}()
	waitFor(t, "the second caller to join", func() bool { return m.flights.waiting("busybox:1.36") == 2 })

	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: err = %v, want context.Canceled", err)
	}
	close(svc.gate)
	if err := <-second; err != nil {
		t.Errorf("second caller: err = %v, want the pull to finish for it", err)
	}
	if n := len(svc.pullCalls()); n != 1 {
		t.Errorf("%d PullImage calls, want 1", n)
	}
}

func TestAllCallersLeavingCancelsThePull(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	svc.gate = make(chan struct{}) // never opened: only cancellation ends the pull
	m, _ := newTestManager(t, svc, clock)
	c := &corev1.Container{Name: "app", Image: "busybox:1.36"}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.EnsureImageExists(ctx, testPod(), c, nil, nil)
		done <- err
	}()
	waitFor(t, "the pull to start", func() bool { return m.flights.waiting("busybox:1.36") == 1 })
	m.flights.mu.Lock()
	fl := m.flights.m["busybox:1.36"]
	m.flights.mu.Unlock()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The runtime call sees the cancellation and returns; that is no
	// image failure, so there is no back-off.
	select {
	case <-fl.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pull did not end when its last caller left")
	}
	if !errors.Is(fl.res.err, context.Canceled) {
		t.Errorf("pull result = %v, want context.Canceled", fl.res.err)
	}
	if in, _ := m.backOff.check("busybox:1.36", clock.Now()); in {
		t.Error("a cancelled pull opened a back-off window")
	}
}

func TestProgress(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	svc.gate = make(chan struct{})
	type tick struct {
		image   string
		elapsed time.Duration
	}
	ticks := make(chan tick, 100)
	m, err := New(Options{Service: svc, Clock: clock.Now, Progress: func(image string, elapsed time.Duration) {
		ticks <- tick{image, elapsed}
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.progressEvery = time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := m.EnsureImageExists(context.Background(), testPod(), &corev1.Container{Name: "app", Image: "busybox:1.36"}, nil, nil)
		done <- err
	}()
	first := <-ticks
	clock.Step(3 * time.Second)
	var later tick
	for later = range ticks {
		if later.elapsed > 0 {
			break
		}
	}
	close(svc.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if first.image != "busybox:1.36" || later.elapsed != 3*time.Second {
		t.Errorf("progress = %+v then %+v, want busybox:1.36 with elapsed 3s on the fake clock", first, later)
	}
}
