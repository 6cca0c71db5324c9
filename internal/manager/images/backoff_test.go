package images

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestBackOffTiming walks one image through failures, the doubling
// windows, the cap, and a success that resets the window.
func TestBackOffTiming(t *testing.T) {
	boom := errors.New("boom")
	steps := []struct {
		at         time.Duration // since the start
		fail       bool          // the pull, if one happens, fails
		wantReason string
		wantPull   bool
	}{
		{at: 0, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // window 10s
		{at: 9*time.Second + 999*time.Millisecond, wantReason: ReasonImagePullBackOff},
		{at: 10 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // window 20s
		{at: 29 * time.Second, wantReason: ReasonImagePullBackOff},
		{at: 30 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // 40s
		{at: 69 * time.Second, wantReason: ReasonImagePullBackOff},
		{at: 70 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true},  // 80s
		{at: 150 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // 160s
		{at: 310 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // 300s, capped
		{at: 609 * time.Second, wantReason: ReasonImagePullBackOff},
		{at: 610 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // still 300s
		{at: 909 * time.Second, wantReason: ReasonImagePullBackOff},
		{at: 910 * time.Second, wantPull: true},                                             // success resets
		{at: 910 * time.Second, fail: true, wantReason: ReasonErrImagePull, wantPull: true}, // 10s again
		{at: 919 * time.Second, wantReason: ReasonImagePullBackOff},
		{at: 920 * time.Second, wantPull: true},
	}
	clock := newFakeClock()
	start := clock.Now()
	svc := newService(clock)
	m, ev := newTestManager(t, svc, clock)
	c := &corev1.Container{Name: "app", Image: "busybox:1.36", ImagePullPolicy: corev1.PullAlways}
	pulls := 0
	for i, s := range steps {
		clock.Step(start.Add(s.at).Sub(clock.Now()))
		if s.fail {
			svc.InjectError("PullImage", boom)
		}
		_, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, nil)
		if got := reasonOf(t, err); got != s.wantReason {
			t.Fatalf("step %d at %v: reason = %q (err %v), want %q", i, s.at, got, err, s.wantReason)
		}
		if s.wantPull {
			pulls++
		}
		if got := len(svc.pullCalls()); got != pulls {
			t.Fatalf("step %d at %v: %d PullImage calls, want %d", i, s.at, got, pulls)
		}
		if s.wantReason == ReasonImagePullBackOff {
			if !errors.Is(err, boom) {
				t.Errorf("step %d: back-off error %v does not carry the last pull error", i, err)
			}
			want := normal("BackOff", `Back-off pulling image "busybox:1.36"`)
			if events := ev.take(); len(events) != 1 || events[0] != want {
				t.Errorf("step %d: events = %v, want [%v]", i, events, want)
			}
			if err.(*Error).Message != `Back-off pulling image "busybox:1.36"` {
				t.Errorf("step %d: message = %q", i, err.(*Error).Message)
			}
		}
		ev.take()
	}
}

func TestBackOffForgetsIdleEntries(t *testing.T) {
	b := newBackOff(BackOffConfig{Initial: 10 * time.Second, Max: 300 * time.Second})
	t0 := time.Unix(0, 0)
	b.failed("img", t0, nil)
	b.failed("img", t0.Add(10*time.Second), nil) // window 20s
	if in, _ := b.check("img", t0.Add(29*time.Second)); !in {
		t.Fatal("not in back-off inside the doubled window")
	}
	// Idle for more than twice the maximum: start over at the initial window.
	later := t0.Add(10*time.Second + 601*time.Second)
	b.failed("img", later, nil)
	if in, _ := b.check("img", later.Add(9*time.Second)); !in {
		t.Error("not in back-off 9s after a fresh failure")
	}
	if in, _ := b.check("img", later.Add(10*time.Second)); in {
		t.Error("still in back-off 10s after a failure that should have restarted at 10s")
	}
}

func TestBackOffConfig(t *testing.T) {
	tests := []struct {
		in      BackOffConfig
		want    BackOffConfig
		wantErr bool
	}{
		{in: BackOffConfig{}, want: BackOffConfig{Initial: 10 * time.Second, Max: 300 * time.Second}},
		{in: BackOffConfig{Initial: time.Second, Max: 5 * time.Second}, want: BackOffConfig{Initial: time.Second, Max: 5 * time.Second}},
		{in: BackOffConfig{Initial: 20 * time.Second, Max: 10 * time.Second}, wantErr: true},
		{in: BackOffConfig{Initial: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := tt.in.withDefaults()
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("withDefaults(%+v) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBackOffPerImage(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	m, _ := newTestManager(t, svc, clock)
	svc.InjectError("PullImage", errors.New("boom"))
	a := &corev1.Container{Name: "a", Image: "busybox"}
	if _, err := m.EnsureImageExists(context.Background(), testPod(), a, nil, nil); reasonOf(t, err) != ReasonErrImagePull {
		t.Fatalf("err = %v, want ErrImagePull", err)
	}
	// Same image as the runtime sees it: backed off.
	same := &corev1.Container{Name: "b", Image: "busybox:latest"}
	if _, err := m.EnsureImageExists(context.Background(), testPod(), same, nil, nil); reasonOf(t, err) != ReasonImagePullBackOff {
		t.Errorf("busybox:latest: err = %v, want ImagePullBackOff", err)
	}
	// Another image is not.
	other := &corev1.Container{Name: "c", Image: "nginx:1"}
	if _, err := m.EnsureImageExists(context.Background(), testPod(), other, nil, nil); err != nil {
		t.Errorf("nginx:1: err = %v, want success", err)
	}
}
