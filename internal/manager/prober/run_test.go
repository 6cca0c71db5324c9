package prober

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/manager/handler/handlertest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var testPod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u-1"}}

type runResult struct {
	Result Result
	Output string
	Err    string
}

func runOnce(rt *handlertest.Runtime, podIP string, c *corev1.Container, p *corev1.Probe) runResult {
	if rt == nil {
		rt = handlertest.NewRuntime()
	}
	r, out, err := RunOnce(context.Background(), rt, nil, nil, testPod, podIP, c, "cid", p)
	res := runResult{Result: r, Output: out}
	if err != nil {
		res.Err = err.Error()
	}
	return res
}

func TestRunExec(t *testing.T) {
	big := strings.Repeat("x", 11<<10)
	c := &corev1.Container{Name: "app", Env: []corev1.EnvVar{
		{Name: "FILE", Value: "/tmp/ready"},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{}},
	}}
	for _, tc := range []struct {
		name string
		exec handlertest.ExecFunc
		want runResult
	}{
		{name: "exit 0", exec: handlertest.Exit("fine", "", 0), want: runResult{Result: Success, Output: "fine"}},
		{name: "exit 1 keeps stdout then stderr", exec: handlertest.Exit("out ", "err", 1), want: runResult{Result: Failure, Output: "out err"}},
		{name: "output truncated to 10KiB", exec: handlertest.Exit(big, "", 1), want: runResult{Result: Failure, Output: big[:10<<10]}},
		{name: "timeout is a failure", exec: func(_ context.Context, _ string, cmd []string, d time.Duration) ([]byte, []byte, error) {
			return nil, nil, handlertest.TimeoutError(cmd, d)
		}, want: runResult{Result: Failure, Output: `command timed out: "cat /tmp/ready " timed out after 2s`}},
		{name: "runtime error is unknown", exec: func(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
			return nil, nil, errors.New("no such container")
		}, want: runResult{Result: Unknown, Err: `exec probe in container "cid": no such container`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := handlertest.NewRuntime()
			rt.SetExec(tc.exec)
			p := &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "$(FILE)", "$(SECRET)"}}}}
			if diff := cmp.Diff(tc.want, runOnce(rt, "", c, p)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// $(VAR) expands from env values only, as the kubelet does for probes.
			want := []handlertest.ExecCall{{ContainerID: "cid", Cmd: []string{"cat", "/tmp/ready", ""}, Timeout: 2 * time.Second}}
			if diff := cmp.Diff(want, rt.ExecCalls()); diff != "" {
				t.Errorf("ExecSync (-want +got):\n%s", diff)
			}
		})
	}
}

func hostPort(t *testing.T, addr string) (string, int32) {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.IP.String(), int32(a.Port)
}

func TestRunHTTP(t *testing.T) {
	var gotUA atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.UserAgent())
		_, _ = w.Write([]byte(strings.Repeat("b", 11<<10)))
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "secret body", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://elsewhere.invalid/")
		w.WriteHeader(http.StatusFound)
		_, _ = w.Write([]byte("moved"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	// Cleanup, not defer: the parallel subtests run after this returns.
	t.Cleanup(srv.Close)
	ip, port := hostPort(t, srv.Listener.Addr().String())
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}}
	}

	t.Run("slow", func(t *testing.T) {
		t.Parallel()
		got := runOnce(nil, ip, c, probe("/slow"))
		if got.Result != Failure || !strings.Contains(got.Output, "Client.Timeout exceeded") {
			t.Errorf("got %+v, want a timeout failure", got)
		}
	})
	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		got := runOnce(nil, ip, c, probe("/ok"))
		if got.Result != Success || len(got.Output) != 10<<10 || got.Err != "" {
			t.Errorf("got %v with %d bytes of output (%s), want Success with 10KiB", got.Result, len(got.Output), got.Err)
		}
		if ua, _ := gotUA.Load().(string); ua != "kube-probe/1.37" {
			t.Errorf("User-Agent = %q", ua)
		}
	})
	for _, tc := range []struct {
		path string
		want runResult
	}{
		{"/bad", runResult{Result: Failure, Output: "HTTP probe failed with statuscode: 503"}},
		{"/away", runResult{Result: Success, Output: "Probe terminated redirects, Response body: moved"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, runOnce(nil, ip, c, probe(tc.path))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port := hostPort(t, ln.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort := hostPort(t, closed.Addr().String())
	closed.Close()

	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "db", ContainerPort: port}}}
	tcp := func(port intstr.IntOrString, host string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port, Host: host}}}
	}
	if got := runOnce(nil, "127.0.0.1", c, tcp(intstr.FromString("db"), "")); got != (runResult{Result: Success}) {
		t.Errorf("named port: %+v", got)
	}
	if got := runOnce(nil, "10.255.255.1", c, tcp(intstr.FromInt32(port), "127.0.0.1")); got != (runResult{Result: Success}) {
		t.Errorf("host overrides pod IP: %+v", got)
	}
	if got := runOnce(nil, "127.0.0.1", c, tcp(intstr.FromInt32(closedPort), "")); got.Result != Failure || !strings.Contains(got.Output, "connection refused") {
		t.Errorf("closed port: %+v", got)
	}
	if got := runOnce(nil, "127.0.0.1", c, tcp(intstr.FromString("nope"), "")); got.Result != Unknown || !strings.Contains(got.Err, "tcpSocket.port") {
		t.Errorf("unknown port name: %+v", got)
	}
}

func TestRunGRPC(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	withHealth := grpc.NewServer()
	healthpb.RegisterHealthServer(withHealth, hs)
	without := grpc.NewServer()
	serve := func(s *grpc.Server) int32 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(s.Stop)
		_, p := hostPort(t, ln.Addr().String())
		return p
	}
	port, bare := serve(withHealth), serve(without)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closedPort := hostPort(t, closed.Addr().String())
	closed.Close()

	svc := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		port    int32
		service *string
		want    Result
		output  string
	}{
		{"serving", port, nil, Success, "service healthy"},
		{"not serving", port, svc("db"), Failure, `service unhealthy (responded with "NOT_SERVING")`},
		{"unknown service", port, svc("nope"), Failure, "error: health rpc probe failed: "},
		{"no health service", bare, nil, Failure, "this server does not implement the grpc health protocol"},
		{"nothing listening", closedPort, nil, Failure, "error: failed to connect service at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: tc.port, Service: tc.service}}}
			got := runOnce(nil, "127.0.0.1", &corev1.Container{Name: "app"}, p)
			if got.Result != tc.want || !strings.HasPrefix(got.Output, tc.output) {
				t.Errorf("got %+v, want %v with output starting %q", got, tc.want, tc.output)
			}
		})
	}
}

func TestRunOnceNoHandler(t *testing.T) {
	if got := runOnce(nil, "", &corev1.Container{Name: "app"}, &corev1.Probe{}); got.Result != Unknown || got.Err == "" {
		t.Errorf("got %+v, want an error", got)
	}
	if got := runOnce(nil, "", &corev1.Container{Name: "app"}, nil); got.Err == "" {
		t.Errorf("nil probe: got %+v, want an error", got)
	}
}
