package streaming

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"
)

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		addr string
		tls  bool
		want string
	}{
		{"127.0.0.1:4321", false, "http://127.0.0.1:4321/"},
		{"127.0.0.1:4321", true, "https://127.0.0.1:4321/"},
		{"10.1.2.3:80", false, "http://10.1.2.3:80/"},
		{"0.0.0.0:4321", false, "http://127.0.0.1:4321/"},
		{"[::]:4321", false, "http://[::1]:4321/"},
		{"[::1]:4321", true, "https://[::1]:4321/"},
		{"[::ffff:0.0.0.0]:4321", false, "http://127.0.0.1:4321/"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			addr, err := net.ResolveTCPAddr("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			u, err := baseURL(addr, tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.String(); got != tc.want {
				t.Errorf("baseURL = %q, want %q", got, tc.want)
			}
		})
	}
}

// nopDocker satisfies Docker for tests that never reach it.
type nopDocker struct{ Docker }

func nopResolver(context.Context, string) (int, bool, error) {
	return 0, false, errors.New("no sandbox")
}

func TestNewURLsAreAbsolute(t *testing.T) {
	s, err := New(Options{Docker: nopDocker{}, Sandbox: nopResolver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q (%v), want 127.0.0.1 and a real port", s.Addr(), err)
	}

	execResp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	attachResp, err := s.GetAttach(&runtimeapi.AttachRequest{ContainerId: "c1", Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	pfResp, err := s.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	for kind, raw := range map[string]string{"exec": execResp.Url, "attach": attachResp.Url, "portforward": pfResp.Url} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !u.IsAbs() || u.Scheme != "http" || u.Host != s.Addr() || !strings.HasPrefix(u.Path, "/"+kind+"/") {
			t.Errorf("%s URL %q: want http://%s/%s/<token>", kind, raw, s.Addr(), kind)
		}
	}

	// Invalid requests are refused by cri-streaming's validation.
	if _, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Tty: true, Stderr: true}); err == nil {
		t.Error("GetExec(tty and stderr) succeeded")
	}
}

func TestNewOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"no docker":     {Sandbox: nopResolver},
		"no resolver":   {Docker: nopDocker{}},
		"cert only":     {Docker: nopDocker{}, Sandbox: nopResolver, TLSCertFile: "/nonexistent"},
		"missing files": {Docker: nopDocker{}, Sandbox: nopResolver, TLSCertFile: "/nonexistent", TLSKeyFile: "/nonexistent"},
		"bad address":   {Docker: nopDocker{}, Sandbox: nopResolver, Addr: "256.0.0.1:0"},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := New(opts); err == nil {
				s.Stop()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestServeAndStop(t *testing.T) {
	s, err := New(Options{Docker: nopDocker{}, Sandbox: nopResolver})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	resp, err := s.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	// A plain GET is no upgrade: cri-streaming refuses it, and the token is spent.
	for i, want := range []int{http.StatusBadRequest, http.StatusNotFound} {
		r, err := http.Get(resp.Url)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("request %d: status %d, want %d", i, r.StatusCode, want)
		}
	}
	r, err := http.Get("http://" + s.Addr() + "/exec/unknown")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown token: status %d, want 404", r.StatusCode)
	}

	s.Stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve() = %v, want nil after Stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Stop")
	}
	s.Stop() // idempotent
}

func TestTokenCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := tokenCache{now: func() time.Time { return now }}
	req := &runtimeapi.ExecRequest{ContainerId: "c1"}
	for _, tok := range []string{"a1", "b2", "c3"} {
		if err := c.put(kindExec, "http://127.0.0.1:1/exec/"+tok, req); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := c.take(kindExec, "a1"); !ok || got != req {
		t.Fatalf("take(a1) = %v, %v; want the request", got, ok)
	}
	if _, ok := c.take(kindExec, "a1"); ok {
		t.Error("a token was used twice")
	}
	if _, ok := c.take(kindAttach, "b2"); ok {
		t.Error("an exec token served an attach")
	}
	if _, ok := c.take(kindExec, "b2"); ok {
		t.Error("a token survived a use of the wrong kind")
	}
	now = now.Add(tokenTTL + time.Second)
	if _, ok := c.take(kindExec, "c3"); ok {
		t.Error("an expired token was accepted")
	}
	// Expired entries go at the next put.
	c.put(kindExec, "http://127.0.0.1:1/exec/d4", req)
	now = now.Add(tokenTTL + time.Second)
	c.put(kindExec, "http://127.0.0.1:1/exec/e5", req)
	if len(c.pending) != 1 {
		t.Errorf("%d pending tokens, want 1", len(c.pending))
	}
}

func TestSplitPath(t *testing.T) {
	for path, want := range map[string][2]string{
		"/exec/abc":        {"exec", "abc"},
		"/attach/abc":      {"attach", "abc"},
		"/portforward/abc": {"portforward", "abc"},
		"/exec/":           {},
		"/exec":            {},
		"/exec/a/b":        {},
		"/logs/abc":        {},
		"/":                {},
	} {
		kind, token, ok := splitPath(path)
		if got := [2]string{kind, token}; got != want || ok != (want[0] != "") {
			t.Errorf("splitPath(%q) = %q, %q, %v; want %q", path, kind, token, ok, want)
		}
	}
}

func TestSessionStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"success": {nil, `{"status":"Success"}`},
		"exit code": {
			utilexec.CodeExitError{Err: errors.New("command terminated with exit code 7"), Code: 7},
			`{"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}`,
		},
		"wrapped exit code": {
			fmt.Errorf("attach: %w", utilexec.CodeExitError{Err: errors.New("x"), Code: 2}),
			`{"status":"Failure","message":"command terminated with non-zero exit code: x","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"2"}]}}`,
		},
		"other": {
			errors.New("boom"),
			`{"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError","code":500}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeStatus(&buf, tc.err); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusDecodesAsClientExpects reads the v5 error-channel message the
// way client-go's v4 decoder does (metav1.Status field names).
func TestStatusDecodesAsClientExpects(t *testing.T) {
	var buf bytes.Buffer
	writeStatus(&buf, utilexec.CodeExitError{Err: errors.New("x"), Code: 42})
	var st struct {
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Details struct {
			Causes []struct {
				Type    string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(buf.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "Failure" || st.Reason != "NonZeroExitCode" || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Type != "ExitCode" || st.Details.Causes[0].Message != "42" {
		t.Errorf("status = %+v", st)
	}
}

func TestTunnelledHeader(t *testing.T) {
	in := http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Key":      {"abc"},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Protocol": {"SPDY/3.1+portforward.k8s.io, base64.channel.k8s.io"},
		"User-Agent":             {"test"},
	}
	got := tunnelledHeader(in)
	want := http.Header{
		"Connection":                {"Upgrade"},
		"Upgrade":                   {"SPDY/3.1"},
		"X-Stream-Protocol-Version": {"portforward.k8s.io"},
		"User-Agent":                {"test"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if in.Get("Upgrade") != "websocket" {
		t.Error("the request's header was modified")
	}
}
