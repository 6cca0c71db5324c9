// Package handler holds what lifecycle hooks and probes share: resolving a
// container port, building the kubelet's httpGet request, the kubelet's
// HTTP client, a TCP connect, and reading what an ExecSync error means.
package handler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kubeVersion is the Kubernetes minor whose kubelet berth behaves as; the
// User-Agents carry it because servers sometimes tell probes apart by it.
const kubeVersion = "1.37"

// User-Agents the kubelet sends unless the action sets its own.
const (
	ProbeUserAgent     = "kube-probe/" + kubeVersion
	LifecycleUserAgent = "kube-lifecycle/" + kubeVersion
)

// DialFunc opens a connection to the pod; the caller can replace it when
// the pod IP is only reachable from inside a network namespace.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DefaultDial is a plain net.Dialer.
func DefaultDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// ResolvePort turns a probe or hook port into a number: an int as is, a
// string as the name of one of the container's ports, or failing that as
// a number written as a string (the kubelet's order).
func ResolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	var n int
	switch port.Type {
	case intstr.Int:
		n = int(port.IntVal)
	case intstr.String:
		found := false
		for _, p := range c.Ports {
			if p.Name != "" && p.Name == port.StrVal {
				n, found = int(p.ContainerPort), true
				break
			}
		}
		if !found {
			v, err := strconv.Atoi(port.StrVal)
			if err != nil {
				return 0, fmt.Errorf("port %q: container %q has no port of this name", port.StrVal, c.Name)
			}
			n = v
		}
	default:
		return 0, fmt.Errorf("port %v: neither a number nor a name", port)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s: invalid port number %d", port.String(), n)
	}
	return n, nil
}

// NewHTTPRequest builds the GET the kubelet sends for an httpGet action:
// host defaults to the pod IP, scheme to http, the path may carry a query,
// headers are added as given, and User-Agent and Accept get the kubelet's
// defaults unless set (an Accept set to "" removes the header).
func NewHTTPRequest(ctx context.Context, a *corev1.HTTPGetAction, c *corev1.Container, podIP, userAgent string) (*http.Request, error) {
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := a.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return nil, errors.New("httpGet.host is empty and the pod has no IP")
	}
	port, err := ResolvePort(a.Port, c)
	if err != nil {
		return nil, fmt.Errorf("httpGet.port: %w", err)
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		// The kubelet passes a path it cannot parse along as it is.
		u = &url.URL{Path: a.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("httpGet %s: %w", u, err)
	}
	h := http.Header{}
	for _, x := range a.HTTPHeaders {
		h.Add(x.Name, x.Value)
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", userAgent)
	}
	if v, ok := h["Accept"]; !ok {
		h.Set("Accept", "*/*")
	} else if len(v) == 0 || (len(v) == 1 && v[0] == "") {
		h.Del("Accept")
	}
	req.Header = h
	req.Host = h.Get("Host")
	return req, nil
}

// NewHTTPClient is the client the kubelet uses for probes and hooks: no
// proxy (the node's proxy must not see pod traffic), certificates not
// verified (pods serve self-signed ones), no connection reuse (the pod
// may be gone by the next probe), no compression, and redirects followed
// only on the same host.
func NewHTTPClient(dial DialFunc) *http.Client {
	if dial == nil {
		dial = DefaultDial
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:              nil,
			DialContext:        dial,
			TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet
			DisableKeepAlives:  true,
			DisableCompression: true,
		},
		CheckRedirect: SameHostRedirects,
	}
}

// SameHostRedirects follows a redirect only to the host of the first
// request, so a pod cannot point the kubelet at another machine; the
// redirect response itself is returned instead.
func SameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// DialTCP connects to host:port and closes the connection at once.
func DialTCP(ctx context.Context, dial DialFunc, host string, port int) error {
	if dial == nil {
		dial = DefaultDial
	}
	conn, err := dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	// Only the connect matters; a close error says nothing about the pod.
	_ = conn.Close()
	return nil
}
