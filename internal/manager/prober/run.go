package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-project/berth/internal/manager/handler"
	"github.com/berth-project/berth/internal/manager/podenv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
)

// maxOutput bounds the exec output and HTTP body kept for messages, as
// the kubelet's exec and HTTP probers do.
const maxOutput = 10 << 10

// outcome is one probe run: Success or Failure, the text the kubelet
// shows, and whether it is a warning (Success with a ProbeWarning event).
type outcome struct {
	result  Result
	output  string
	warning bool
}

type runner struct {
	rt     internalapi.RuntimeService
	client *http.Client
	dial   handler.DialFunc
}

func newRunner(rt internalapi.RuntimeService, client *http.Client, dial handler.DialFunc) runner {
	if dial == nil {
		dial = handler.DefaultDial
	}
	if client == nil {
		client = handler.NewHTTPClient(dial)
	}
	return runner{rt: rt, client: client, dial: dial}
}

// RunOnce runs the probe once, with its timeoutSeconds, and returns
// Success or Failure with the probe's output. An error means the probe
// could not run (bad port, ExecSync failing for a reason other than the
// command's exit), with Unknown: the kubelet retries such a probe and
// never counts it toward a threshold. A redirect to another host is a
// Success whose output is the kubelet's warning text. httpc and dial may
// be nil for the defaults.
func RunOnce(ctx context.Context, rt internalapi.RuntimeService, httpc *http.Client, dial handler.DialFunc, pod *corev1.Pod, podIP string, c *corev1.Container, containerID string, probe *corev1.Probe) (Result, string, error) {
	if probe == nil {
		return Unknown, "", errors.New("probe is nil")
	}
	out, err := newRunner(rt, httpc, dial).run(ctx, pod, podIP, c, containerID, withDefaults(probe))
	if err != nil {
		return Unknown, "", err
	}
	return out.result, out.output, nil
}

func (r runner) run(ctx context.Context, _ *corev1.Pod, podIP string, c *corev1.Container, containerID string, p *corev1.Probe) (outcome, error) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	switch {
	case p.Exec != nil:
		return r.exec(ctx, c, containerID, p.Exec, timeout)
	case p.HTTPGet != nil:
		return r.http(ctx, c, podIP, p.HTTPGet, timeout)
	case p.TCPSocket != nil:
		return r.tcp(ctx, c, podIP, p.TCPSocket, timeout)
	case p.GRPC != nil:
		return r.grpc(ctx, podIP, p.GRPC, timeout)
	}
	return outcome{}, fmt.Errorf("probe of container %q has no handler", c.Name)
}

func (r runner) exec(ctx context.Context, c *corev1.Container, containerID string, a *corev1.ExecAction, timeout time.Duration) (outcome, error) {
	// The kubelet expands $(VAR) in probe commands (not in hooks) from
	// the container's env values only: valueFrom entries expand to "".
	vars := make(map[string]string, len(c.Env))
	for _, e := range c.Env {
		vars[e.Name] = e.Value
	}
	cmd := make([]string, len(a.Command))
	for i, s := range a.Command {
		cmd[i] = podenv.Expand(s, podenv.MapVars(vars))
	}
	// The timeout goes to the runtime, which stops the command; ctx is
	// left alone so cri-client can add its own slack for the RPC.
	stdout, stderr, err := r.rt.ExecSync(ctx, containerID, cmd, timeout)
	data := truncate(handler.CombinedOutput(stdout, stderr))
	if err == nil {
		return outcome{result: Success, output: data}, nil
	}
	if code, ok := handler.ExitCode(err); ok {
		if code == 0 {
			return outcome{result: Success, output: data}, nil
		}
		return outcome{result: Failure, output: data}, nil
	}
	if handler.IsTimeout(err) && ctx.Err() == nil {
		return outcome{result: Failure, output: err.Error()}, nil
	}
	return outcome{}, fmt.Errorf("exec probe in container %q: %w", containerID, err)
}

func truncate(b []byte) string {
	if len(b) > maxOutput {
		b = b[:maxOutput]
	}
	return string(b)
}

func (r runner) http(ctx context.Context, c *corev1.Container, podIP string, a *corev1.HTTPGetAction, timeout time.Duration) (outcome, error) {
	req, err := handler.NewHTTPRequest(ctx, a, c, podIP, handler.ProbeUserAgent)
	if err != nil {
		return outcome{}, err
	}
	// A copy with the probe's timeout gives the kubelet's error text
	// ("Client.Timeout exceeded while awaiting headers").
	client := *r.client
	client.Timeout = timeout
	resp, err := client.Do(req)
	if err != nil {
		// Refused, reset, timed out: all failures, not errors.
		return outcome{result: Failure, output: err.Error()}, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if err != nil {
		return outcome{}, fmt.Errorf("read body of %s: %w", req.URL, err)
	}
	body := string(b)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// Only a redirect to another host is left unfollowed.
		return outcome{result: Success, warning: true, output: "Probe terminated redirects, Response body: " + body}, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return outcome{result: Success, output: body}, nil
	}
	// The kubelet keeps the body out of this message (kubernetes#99425).
	return outcome{result: Failure, output: fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)}, nil
}

func (r runner) tcp(ctx context.Context, c *corev1.Container, podIP string, a *corev1.TCPSocketAction, timeout time.Duration) (outcome, error) {
	port, err := handler.ResolvePort(a.Port, c)
	if err != nil {
		return outcome{}, fmt.Errorf("tcpSocket.port: %w", err)
	}
	host := a.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return outcome{}, errors.New("tcpSocket.host is empty and the pod has no IP")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := handler.DialTCP(ctx, r.dial, host, port); err != nil {
		return outcome{result: Failure, output: err.Error()}, nil
	}
	return outcome{result: Success}, nil
}

func (r runner) grpc(ctx context.Context, podIP string, a *corev1.GRPCAction, timeout time.Duration) (outcome, error) {
	if podIP == "" {
		return outcome{}, errors.New("grpc probe: the pod has no IP")
	}
	addr := net.JoinHostPort(podIP, strconv.Itoa(int(a.Port)))
	// passthrough: the address is an IP, no resolver should touch it.
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(handler.ProbeUserAgent),
		grpc.WithContextDialer(func(ctx context.Context, s string) (net.Conn, error) {
			return r.dial(ctx, "tcp", s)
		}))
	if err != nil {
		return outcome{}, fmt.Errorf("grpc probe %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unimplemented:
			return outcome{result: Failure, output: "this server does not implement the grpc health protocol (grpc.health.v1.Health): " + st.Message()}, nil
		case codes.DeadlineExceeded:
			return outcome{result: Failure, output: fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)}, nil
		case codes.Unavailable:
			return outcome{result: Failure, output: fmt.Sprintf("error: failed to connect service at %q: %s", addr, st.Message())}, nil
		}
		return outcome{result: Failure, output: fmt.Sprintf("error: health rpc probe failed: %v", err)}, nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return outcome{result: Failure, output: fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())}, nil
	}
	return outcome{result: Success, output: "service healthy"}, nil
}
