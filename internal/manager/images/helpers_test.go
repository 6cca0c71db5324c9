package images

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pullCall is one PullImage the service received.
type pullCall struct {
	Image   string
	Auth    *cred
	Sandbox string // sandbox name, "" without a config
}

// service is the published fake image service, plus what the fake does
// not keep: every pull's auth, a pull that takes (fake) time, and a gate
// that holds pulls until the test opens it.
type service struct {
	*critest.FakeImageService
	clock     *fakeClock
	pullTakes time.Duration
	gate      chan struct{}

	mu        sync.Mutex
	pulls     []pullCall
	specsSeen []*runtimeapi.ImageSpec
}

func newService(clock *fakeClock) *service {
	return &service{FakeImageService: critest.NewFakeImageService(), clock: clock}
}

func (s *service) ImageStatus(ctx context.Context, spec *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	s.mu.Lock()
	s.specsSeen = append(s.specsSeen, spec)
	s.mu.Unlock()
	return s.FakeImageService.ImageStatus(ctx, spec, verbose)
}

func (s *service) PullImage(ctx context.Context, spec *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	call := pullCall{Image: spec.Image, Sandbox: sandbox.GetMetadata().GetName()}
	if auth != nil {
		call.Auth = &cred{auth.Username, auth.Password, auth.ServerAddress, auth.IdentityToken, auth.RegistryToken}
	}
	s.mu.Lock()
	s.pulls = append(s.pulls, call)
	s.specsSeen = append(s.specsSeen, spec)
	s.mu.Unlock()
	s.clock.Step(s.pullTakes)
	return s.FakeImageService.PullImage(ctx, spec, auth, sandbox)
}

func (s *service) pullCalls() []pullCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pullCall(nil), s.pulls...)
}

func (s *service) called() []string {
	s.Lock()
	defer s.Unlock()
	return append([]string(nil), s.Called...)
}

// events collects a Manager's events.
type events struct {
	mu  sync.Mutex
	got []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.got
	e.got = nil
	return out
}

func newTestManager(t *testing.T, svc *service, clock *fakeClock) (*Manager, *events) {
	t.Helper()
	ev := &events{}
	m, err := New(Options{Service: svc, Events: ev.add, Clock: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, ev
}

func testPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: "web", UID: "uid-1",
		Annotations: map[string]string{"team": "blue"},
	}}
}

func testSandbox() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"}}
}

func normal(reason, msg string) Event {
	return Event{Type: corev1.EventTypeNormal, Reason: reason, Message: msg}
}

func warning(reason, msg string) Event {
	return Event{Type: corev1.EventTypeWarning, Reason: reason, Message: msg}
}

// reasonOf returns the Reason of an *Error, or "" for nil.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T) is not *Error", err, err)
	}
	return e.Reason
}
