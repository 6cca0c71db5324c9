package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/manager/handler/handlertest"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var testPod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u-1"}}

func newRunner(t *testing.T, opts Options) (*Runner, *handlertest.Runtime) {
	t.Helper()
	rt := handlertest.NewRuntime()
	opts.Runtime = rt
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, rt
}

func TestNewNeedsRuntime(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Runtime: no error")
	}
}

func TestRunExec(t *testing.T) {
	c := &corev1.Container{Name: "app"}
	h := &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 2"}}}

	t.Run("success", func(t *testing.T) {
		r, rt := newRunner(t, Options{})
		msg, err := r.Run(context.Background(), testPod, "10.0.0.1", c, "cid", h, 30*time.Second)
		if err != nil || msg != "" {
			t.Fatalf("Run = %q, %v", msg, err)
		}
		want := []handlertest.ExecCall{{ContainerID: "cid", Cmd: []string{"sh", "-c", "exit 2"}, Timeout: 30 * time.Second}}
		if diff := cmp.Diff(want, rt.ExecCalls()); diff != "" {
			t.Errorf("ExecSync calls (-want +got):\n%s", diff)
		}
	})

	t.Run("non-zero exit", func(t *testing.T) {
		r, rt := newRunner(t, Options{})
		rt.SetExec(handlertest.Exit("out\n", "bad\n", 2))
		msg, err := r.Run(context.Background(), testPod, "10.0.0.1", c, "cid", h, 0)
		if err == nil {
			t.Fatal("no error")
		}
		if msg != "out\nbad\n" {
			t.Errorf("msg = %q, want stdout then stderr", msg)
		}
		got := Message(testPod, c, h, msg, err)
		want := `Exec lifecycle hook ([sh -c exit 2]) for Container "app" in Pod "web_ns(u-1)" failed - error: command 'sh -c exit 2' exited with 2: bad` + "\n" + `, message: "out\nbad\n"`
		if got != want {
			t.Errorf("Message =\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("runtime error", func(t *testing.T) {
		r, rt := newRunner(t, Options{})
		boom := errors.New("container not running")
		rt.InjectError("ExecSync", boom)
		if _, err := r.Run(context.Background(), testPod, "", c, "cid", h, 0); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})
}

func TestRunRefusesBadHandlers(t *testing.T) {
	c := &corev1.Container{Name: "app"}
	for _, tc := range []struct {
		name string
		h    *corev1.LifecycleHandler
		want string
	}{
		{"nil", nil, "lifecycle handler is nil"},
		{"empty", &corev1.LifecycleHandler{}, "one of exec, httpGet, sleep must be set"},
		{"two", &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}, Sleep: &corev1.SleepAction{Seconds: 1}},
			"only one handler type may be set, got exec, sleep"},
		{"tcpSocket", &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, "tcpSocket: not supported"},
		{"empty command", &corev1.LifecycleHandler{Exec: &corev1.ExecAction{}}, "exec.command: must not be empty"},
		{"negative sleep", &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: -1}}, "sleep.seconds: must be non-negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rt := newRunner(t, Options{})
			_, err := r.Run(context.Background(), testPod, "10.0.0.1", c, "cid", tc.h, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if n := len(rt.ExecCalls()); n != 0 {
				t.Errorf("%d ExecSync calls for a refused handler", n)
			}
		})
	}
}

// server is an httptest server that records what it received.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newServer(t *testing.T, tls bool, h http.HandlerFunc) *server {
	s := &server{}
	f := func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}
	if tls {
		s.Server = httptest.NewTLSServer(http.HandlerFunc(f))
	} else {
		s.Server = httptest.NewServer(http.HandlerFunc(f))
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) port(t *testing.T) int {
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func (s *server) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

func TestRunHTTP(t *testing.T) {
	t.Run("named port, pod IP, headers", func(t *testing.T) {
		srv := newServer(t, false, nil)
		c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: int32(srv.port(t))}}}
		h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/pre-stop", Port: intstr.FromString("admin"),
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Token", Value: "t"}}}}
		r, _ := newRunner(t, Options{})
		if msg, err := r.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 0); err != nil {
			t.Fatalf("Run = %q, %v", msg, err)
		}
		reqs := srv.requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		got := reqs[0]
		if got.URL.Path != "/pre-stop" || got.Header.Get("X-Token") != "t" || got.UserAgent() != "kube-lifecycle/1.37" {
			t.Errorf("request: path %q, X-Token %q, User-Agent %q", got.URL.Path, got.Header.Get("X-Token"), got.UserAgent())
		}
	})

	t.Run("status", func(t *testing.T) {
		srv := newServer(t, false, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
		c := &corev1.Container{Name: "app"}
		h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/x", Port: intstr.FromInt32(int32(srv.port(t)))}}
		lenient, _ := newRunner(t, Options{})
		if _, err := lenient.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 0); err != nil {
			t.Errorf("kubelet default: a 500 must not fail the hook, got %v", err)
		}
		strict, _ := newRunner(t, Options{FailOnHTTPStatus: true})
		msg, err := strict.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 0)
		if err == nil || msg != "500 Internal Server Error" {
			t.Errorf("FailOnHTTPStatus: Run = %q, %v", msg, err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		c := &corev1.Container{Name: "app"}
		h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromInt32(int32(port))}}
		r, _ := newRunner(t, Options{})
		msg, err := r.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 0)
		if err == nil {
			t.Fatal("no error")
		}
		got := Message(testPod, c, h, msg, err)
		want := `HTTP lifecycle hook (/hook) for Container "app" in Pod "web_ns(u-1)" failed - error: Get "http://127.0.0.1:` + strconv.Itoa(port) + `/hook": dial tcp`
		if !strings.HasPrefix(got, want) {
			t.Errorf("Message =\n%s\nwant prefix\n%s", got, want)
		}
	})

	t.Run("https", func(t *testing.T) {
		srv := newServer(t, true, nil)
		c := &corev1.Container{Name: "app"}
		h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(srv.port(t))), Scheme: corev1.URISchemeHTTPS}}
		r, _ := newRunner(t, Options{})
		if _, err := r.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 0); err != nil {
			t.Fatalf("self-signed HTTPS hook: %v", err)
		}
	})

	t.Run("https falls back to http", func(t *testing.T) {
		srv := newServer(t, false, nil)
		c := &corev1.Container{Name: "app"}
		h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(srv.port(t))), Scheme: corev1.URISchemeHTTPS,
			HTTPHeaders: []corev1.HTTPHeader{{Name: "Authorization", Value: "secret"}}}}
		var events []string
		r, _ := newRunner(t, Options{Event: func(_ *corev1.Pod, reason, message string) { events = append(events, reason+": "+message) }})
		if _, err := r.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 0); err != nil {
			t.Fatalf("Run: %v", err)
		}
		reqs := srv.requests()
		if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "" {
			t.Fatalf("want one plain request without Authorization, got %d", len(reqs))
		}
		want := []string{"LifecycleHTTPFallback: request to HTTPS lifecycle hook 127.0.0.1:" + strconv.Itoa(srv.port(t)) + " got HTTP response, retry with HTTP succeeded"}
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := newServer(t, false, func(http.ResponseWriter, *http.Request) { <-release })
		defer close(release)
		c := &corev1.Container{Name: "app"}
		h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(srv.port(t)))}}
		r, _ := newRunner(t, Options{})
		if _, err := r.Run(context.Background(), testPod, "127.0.0.1", c, "cid", h, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
}

func TestRunSleep(t *testing.T) {
	c := &corev1.Container{Name: "app"}
	r, _ := newRunner(t, Options{})

	h0 := &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 0}}
	if _, err := r.Run(context.Background(), testPod, "", c, "cid", h0, 0); err != nil {
		t.Fatalf("sleep 0: %v", err)
	}

	h := &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 60}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	msg, err := r.Run(ctx, testPod, "", c, "cid", h, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sleep: err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("sleep ignored the cancel for %v", d)
	}
	want := `Sleep lifecycle hook (60) for Container "app" in Pod "web_ns(u-1)" failed - error: container terminated before sleep hook finished`
	if got := Message(testPod, c, h, msg, err); got != want {
		t.Errorf("Message =\n%s\nwant\n%s", got, want)
	}

	if _, err := r.Run(context.Background(), testPod, "", c, "cid", h, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sleep past timeout: err = %v", err)
	}
}

func TestMessage(t *testing.T) {
	c := &corev1.Container{Name: "app"}
	if got := Message(testPod, c, &corev1.LifecycleHandler{}, "", nil); got != "" {
		t.Errorf("no error: Message = %q, want empty", got)
	}
	if got, want := Message(testPod, c, nil, "", errors.New("x")), "Cannot run handler: x"; got != want {
		t.Errorf("nil handler: Message = %q, want %q", got, want)
	}
}
