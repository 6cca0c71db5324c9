package integration

// A Docker Engine API proxy for the TestRobust* tests: it forwards berth's
// Docker calls and can hold one, so a test can kill berth or let a caller's
// deadline expire at a known point.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// holdMode says what the proxy does with a request.
type holdMode int

const (
	// pass forwards the request and its answer.
	pass holdMode = iota
	// holdBefore never forwards the request: the caller waits until it
	// goes away.
	holdBefore
	// holdAfter forwards the request (Docker carries it out whatever
	// becomes of the caller) but never answers.
	holdAfter
)

// dockerProxy forwards the Docker Engine API from a unix socket of its own
// to the suite's dockerd. Arm it with a rule; the first request the rule
// holds is reported on held, and the rule is then disarmed.
type dockerProxy struct {
	socket string
	held   chan string
	srv    *http.Server
	rp     *httputil.ReverseProxy

	mu   sync.Mutex
	rule func(*http.Request) holdMode
}

func newDockerProxy(t *testing.T) *dockerProxy {
	t.Helper()
	return newDockerProxyAt(t, filepath.Join(shortTempDir(t), "docker.sock"))
}

// newDockerProxyAt is a dockerProxy listening on socket.
func newDockerProxyAt(t *testing.T, socket string) *dockerProxy {
	t.Helper()
	requireIntegration(t)
	u, err := url.Parse(theSuite.docker.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		t.Fatalf("docker host %q: the proxy needs a unix socket", theSuite.docker.DaemonHost())
	}
	daemon := u.Path
	p := &dockerProxy{socket: socket, held: make(chan string, 1)}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", daemon)
		}},
		FlushInterval: -1,
	}
	l, err := net.Listen("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// host is the --docker-host of the proxy.
func (p *dockerProxy) host() string {
	return "unix://" + p.socket
}

func (p *dockerProxy) arm(rule func(*http.Request) holdMode) {
	p.mu.Lock()
	p.rule = rule
	p.mu.Unlock()
}

func (p *dockerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode := pass
	p.mu.Lock()
	if p.rule != nil {
		if mode = p.rule(r); mode != pass {
			p.rule = nil
		}
	}
	p.mu.Unlock()
	call := r.Method + " " + r.URL.String()
	switch mode {
	case pass:
		p.rp.ServeHTTP(w, r)
	case holdAfter:
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		p.held <- fmt.Sprintf("%s (done by Docker: %d)", call, rec.Code)
		<-r.Context().Done()
	case holdBefore:
		p.held <- call
		<-r.Context().Done()
	}
}

// apiPath is the path of a Docker API request without its version prefix.
func apiPath(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v") {
		if i := strings.Index(p[1:], "/"); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}

// onCreate is a rule that applies mode to the creation of a container
// whose Docker name starts with prefix ("k8s_POD_" for a pause container).
func onCreate(prefix string, mode holdMode) func(*http.Request) holdMode {
	return func(r *http.Request) holdMode {
		if r.Method == http.MethodPost && apiPath(r) == "/containers/create" && strings.HasPrefix(r.URL.Query().Get("name"), prefix) {
			return mode
		}
		return pass
	}
}

// isStart reports whether r starts a container, and which.
func isStart(r *http.Request) (string, bool) {
	p := apiPath(r)
	if r.Method != http.MethodPost || !strings.HasPrefix(p, "/containers/") || !strings.HasSuffix(p, "/start") {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/start"), true
}

// onStart is a rule that applies mode to the first container start.
func onStart(mode holdMode) func(*http.Request) holdMode {
	return func(r *http.Request) holdMode {
		if _, ok := isStart(r); ok {
			return mode
		}
		return pass
	}
}

// onInspectAfterStart is a rule that lets the first container start
// through and applies mode to the next inspect of that container.
func onInspectAfterStart(mode holdMode) func(*http.Request) holdMode {
	started := ""
	return func(r *http.Request) holdMode {
		if id, ok := isStart(r); ok && started == "" {
			started = id
		} else if started != "" && r.Method == http.MethodGet && apiPath(r) == "/containers/"+started+"/json" {
			return mode
		}
		return pass
	}
}
