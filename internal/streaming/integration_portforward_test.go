package streaming_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/streaming"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const podPage = "hello-from-pod"

// httpdContainer runs busybox httpd on 127.0.0.1:port, serving podPage,
// and waits until it answers.
func httpdContainer(t *testing.T, d *client.Client, port int, hostNetwork bool) string {
	t.Helper()
	script := fmt.Sprintf("mkdir -p /www && echo %s > /www/index.html && exec httpd -f -p 127.0.0.1:%d -h /www", podPage, port)
	id := runContainer(t, d, []string{"sh", "-c", script}, func(_ *container.Config, h *container.HostConfig) {
		if hostNetwork {
			h.NetworkMode = "host"
		}
	})
	probe := []string{"wget", "-q", "-O", "-", fmt.Sprintf("http://127.0.0.1:%d/index.html", port)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, code, err := streaming.ExecSync(t.Context(), d, id, probe, 5*time.Second, 1024)
		if err == nil && code == 0 && strings.Contains(string(out), podPage) {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd in the container does not answer: code %d, %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialer is a port-forward client connection to rawURL over transport.
func dialer(t *testing.T, transport, rawURL string) httpstream.Dialer {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	switch transport {
	case overSPDY:
		rt, upgrader, err := spdy.RoundTripperFor(clientConfig)
		if err != nil {
			t.Fatal(err)
		}
		return spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	default:
		d, err := portforward.NewSPDYOverWebsocketDialer(u, clientConfig)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// forward runs kubectl port-forward's client on rawURL to remotePort and
// returns the local port; the forward stops when the test ends.
func forward(t *testing.T, transport, rawURL string, remotePort int) (int, error) {
	t.Helper()
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddresses(dialer(t, transport, rawURL), []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", remotePort)}, stop, ready, io.Discard, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		return 0, fmt.Errorf("forward ended before ready: %w", err)
	case <-time.After(10 * time.Second):
		t.Fatal("port-forward not ready")
	}
	t.Cleanup(func() {
		close(stop)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("port-forward did not stop")
		}
	})
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	return int(ports[0].Local), nil
}

func TestPortForward(t *testing.T) {
	d := requireDocker(t)
	s := startServer(t, d, nil)
	hostPort := freePort(t)
	pods := []struct {
		name string
		id   string
		port int
	}{
		// Bound to the pod's own loopback: reachable only from inside its
		// network namespace.
		{"pod network", httpdContainer(t, d, 8080, false), 8080},
		{"host network", httpdContainer(t, d, hostPort, true), hostPort},
	}
	for _, pod := range pods {
		for _, tr := range transports {
			t.Run(pod.name+"/"+tr, func(t *testing.T) {
				resp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: pod.id})
				if err != nil {
					t.Fatal(err)
				}
				local, err := forward(t, tr, resp.Url, pod.port)
				if err != nil {
					t.Fatal(err)
				}
				localAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(local))

				// An HTTP client through the forward.
				hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
				for range 3 {
					r, err := hc.Get("http://" + localAddr + "/index.html")
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(r.Body)
					r.Body.Close()
					if strings.TrimSpace(string(body)) != podPage {
						t.Errorf("GET through the forward = %q, want %q", body, podPage)
					}
				}

				// A client that half-closes after its request still gets the
				// whole answer.
				c, err := net.DialTimeout("tcp", localAddr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "GET /index.html HTTP/1.0\r\n\r\n")
				if err := c.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				answer, err := io.ReadAll(c)
				if err != nil {
					t.Fatalf("read the answer after half-closing: %v", err)
				}
				if !strings.HasPrefix(string(answer), "HTTP/1.") || !strings.Contains(string(answer), podPage) {
					t.Errorf("answer after half-close = %q", answer)
				}

				// The URL was used: a second forward on it fails.
				if _, err := forward(t, tr, resp.Url, pod.port); err == nil {
					t.Error("a second use of the port-forward URL succeeded")
				}
			})
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
