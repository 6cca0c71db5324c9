package handler

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/manager/handler/handlertest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolvePort(t *testing.T) {
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080}, {Name: "8081", ContainerPort: 9090}, {ContainerPort: 7070},
	}}
	for _, tc := range []struct {
		name    string
		port    intstr.IntOrString
		want    int
		wantErr string
	}{
		{name: "int", port: intstr.FromInt32(80), want: 80},
		{name: "name", port: intstr.FromString("http"), want: 8080},
		{name: "name wins over number", port: intstr.FromString("8081"), want: 9090},
		{name: "number as string", port: intstr.FromString("443"), want: 443},
		{name: "unknown name", port: intstr.FromString("grpc"), wantErr: `port "grpc": container "app" has no port of this name`},
		{name: "empty", port: intstr.FromString(""), wantErr: `port "": container "app" has no port of this name`},
		{name: "zero", port: intstr.FromInt32(0), wantErr: "invalid port number 0"},
		{name: "too big", port: intstr.FromString("70000"), wantErr: "invalid port number 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolvePort(tc.port, c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolvePort = %d, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ResolvePort = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestNewHTTPRequest(t *testing.T) {
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}
	std := http.Header{"Accept": {"*/*"}, "User-Agent": {"ua/1"}}
	for _, tc := range []struct {
		name       string
		action     corev1.HTTPGetAction
		podIP      string
		wantURL    string
		wantHeader http.Header
		wantHost   string
		wantErr    string
	}{
		{name: "pod IP and named port", action: corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("web")},
			podIP: "10.0.0.5", wantURL: "http://10.0.0.5:8080/healthz", wantHeader: std},
		{name: "path without slash", action: corev1.HTTPGetAction{Path: "foo", Port: intstr.FromInt32(80)},
			podIP: "10.0.0.5", wantURL: "http://10.0.0.5:80/foo", wantHeader: std},
		{name: "query and https", action: corev1.HTTPGetAction{Path: "/q?k=v", Port: intstr.FromInt32(443), Scheme: corev1.URISchemeHTTPS},
			podIP: "10.0.0.5", wantURL: "https://10.0.0.5:443/q?k=v", wantHeader: std},
		{name: "ipv6", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80)},
			podIP: "fd00::1", wantURL: "http://[fd00::1]:80", wantHeader: std},
		{name: "host overrides pod IP", action: corev1.HTTPGetAction{Host: "example.test", Port: intstr.FromInt32(80)},
			podIP: "10.0.0.5", wantURL: "http://example.test:80", wantHeader: std},
		{name: "headers, own User-Agent, Host header", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80), HTTPHeaders: []corev1.HTTPHeader{
			{Name: "x-foo", Value: "a"}, {Name: "X-Foo", Value: "b"}, {Name: "User-Agent", Value: "mine"}, {Name: "Host", Value: "vhost"}}},
			podIP: "10.0.0.5", wantURL: "http://10.0.0.5:80", wantHost: "vhost",
			wantHeader: http.Header{"Accept": {"*/*"}, "User-Agent": {"mine"}, "X-Foo": {"a", "b"}, "Host": {"vhost"}}},
		{name: "empty Accept removes it", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80), HTTPHeaders: []corev1.HTTPHeader{{Name: "Accept", Value: ""}}},
			podIP: "10.0.0.5", wantURL: "http://10.0.0.5:80", wantHeader: http.Header{"User-Agent": {"ua/1"}}},
		{name: "no host no IP", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80)}, wantErr: "pod has no IP"},
		{name: "bad port", action: corev1.HTTPGetAction{Port: intstr.FromString("nope")}, podIP: "10.0.0.5", wantErr: "httpGet.port: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := NewHTTPRequest(context.Background(), &tc.action, c, tc.podIP, "ua/1")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.String(); got != tc.wantURL {
				t.Errorf("URL = %q, want %q", got, tc.wantURL)
			}
			if diff := cmp.Diff(tc.wantHeader, req.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if req.Host != tc.wantHost {
				t.Errorf("Host = %q, want %q", req.Host, tc.wantHost)
			}
		})
	}
}

func TestClientRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect to another host was followed: %s", r.URL)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/other":
			// Same port space, other hostname: localhost instead of 127.0.0.1.
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
		case "/ok":
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	client := NewHTTPClient(nil)
	for path, want := range map[string]int{"/same": http.StatusTeapot, "/other": http.StatusFound} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestClientSkipsTLSVerify(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	resp, err := NewHTTPClient(nil).Get(srv.URL)
	if err != nil {
		t.Fatalf("self-signed server: %v", err)
	}
	resp.Body.Close()
}

func TestDialTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var dialed string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = addr
		return DefaultDial(ctx, network, addr)
	}
	if err := DialTCP(ctx, dial, "127.0.0.1", port); err != nil {
		t.Fatalf("open port: %v", err)
	}
	if want := ln.Addr().String(); dialed != want {
		t.Errorf("dialed %q, want %q", dialed, want)
	}
	ln.Close()
	if err := DialTCP(ctx, nil, "127.0.0.1", port); err == nil {
		t.Fatal("closed port: no error")
	}
}

func TestExecErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		wantCode    int
		wantExit    bool
		wantTimeout bool
	}{
		{name: "nil"},
		{name: "exit 3", err: handlertest.ExitError([]string{"false"}, 3, ""), wantCode: 3, wantExit: true},
		{name: "wrapped exit", err: errors.Join(errors.New("ctx"), handlertest.ExitError([]string{"x"}, 1, "")), wantCode: 1, wantExit: true},
		{name: "cri-client timeout", err: handlertest.TimeoutError([]string{"sleep", "9"}, time.Second), wantTimeout: true},
		{name: "grpc deadline", err: status.Error(codes.DeadlineExceeded, "late"), wantTimeout: true},
		{name: "not found", err: status.Error(codes.NotFound, "no container")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ok := ExitCode(tc.err)
			if code != tc.wantCode || ok != tc.wantExit {
				t.Errorf("ExitCode = %d, %v; want %d, %v", code, ok, tc.wantCode, tc.wantExit)
			}
			if got := IsTimeout(tc.err); got != tc.wantTimeout {
				t.Errorf("IsTimeout = %v, want %v", got, tc.wantTimeout)
			}
		})
	}
}
