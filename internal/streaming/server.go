package streaming

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	cristreaming "k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// DefaultAddr is where the server listens unless told otherwise: loopback,
// a free port. The kubelet runs on the same host and reads the URL.
const DefaultAddr = "127.0.0.1:0"

// stopTimeout bounds how long Stop waits for sessions it has ended.
const stopTimeout = 10 * time.Second

// Options configure a Server.
type Options struct {
	Docker Docker
	// Addr is the host:port to listen on; "" means DefaultAddr.
	Addr string
	// TLSCertFile and TLSKeyFile, both or neither, serve https.
	TLSCertFile, TLSKeyFile string
	// Sandbox finds a pod's network namespace for port-forward.
	Sandbox SandboxResolver
	Logger  *slog.Logger
}

// Server is the CRI streaming server: it issues exec, attach and
// port-forward URLs and serves the sessions on them.
type Server struct {
	inner    cristreaming.Server
	runtime  *dockerRuntime
	http     *http.Server
	listener net.Listener
	baseURL  *url.URL
	log      *slog.Logger

	idleTimeout time.Duration
	tokens      tokenCache
	handlers    gate    // ServeHTTP calls in flight
	conns       connSet // connections handed over to a session
}

// New binds the listener, so Addr and the URLs are final, and builds the
// server. Serve starts serving.
func New(opts Options) (*Server, error) {
	if opts.Docker == nil || opts.Sandbox == nil {
		return nil, errors.New("streaming: Docker and Sandbox are required")
	}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("streaming: TLSCertFile and TLSKeyFile go together")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	var tlsConfig *tls.Config
	if opts.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("streaming: load TLS key pair %q: %w", opts.TLSCertFile, err)
		}
		tlsConfig = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// SPDY and WebSocket upgrades need HTTP/1.1: never offer h2.
			NextProtos: []string{"http/1.1"},
		}
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("streaming: listen on %q: %w", addr, err)
	}
	base, err := baseURL(ln.Addr(), tlsConfig != nil)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}

	rt := newDockerRuntime(opts.Docker, opts.Sandbox, log)
	config := cristreaming.DefaultConfig
	config.Addr = ln.Addr().String()
	config.BaseURL = base
	// These lists only gate SPDY; cri-streaming's SPDY handler knows v1-v4
	// and would dereference a nil handler for v5, which client-go's SPDY
	// executor offers first. WebSocket v5 and port-forward over WebSocket
	// are served in front of cri-streaming (serveHTTP).
	config.SupportedRemoteCommandProtocols = []string{
		remotecommand.StreamProtocolV4Name,
		remotecommand.StreamProtocolV3Name,
		remotecommand.StreamProtocolV2Name,
		remotecommand.StreamProtocolV1Name,
	}
	config.SupportedPortForwardProtocols = []string{portforward.ProtocolV1Name}
	inner, err := cristreaming.NewServer(config, rt)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("streaming: %w", err)
	}

	s := &Server{
		inner:       inner,
		runtime:     rt,
		listener:    ln,
		baseURL:     base,
		log:         log,
		idleTimeout: config.StreamIdleTimeout,
		tokens:      tokenCache{now: time.Now},
	}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// baseURL is the absolute URL the tokens are appended to. The kubelet
// proxies to it and rejects a relative one. An unspecified listen address
// (0.0.0.0, ::) is advertised as loopback of its family: the kubelet is on
// this host.
func baseURL(addr net.Addr, useTLS bool) (*url.URL, error) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return nil, fmt.Errorf("streaming: listen address %q: %w", addr, err)
	}
	ip := ap.Addr().Unmap()
	switch {
	case ip.IsUnspecified() && ip.Is4():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return &url.URL{
		Scheme: scheme,
		Host:   netip.AddrPortFrom(ip, ap.Port()).String(),
		Path:   "/",
	}, nil
}

// Addr is the address the server listens on, host:port.
func (s *Server) Addr() string {
	return s.listener.Addr().String()
}

// Serve serves on the bound listener until Stop; it then returns nil.
func (s *Server) Serve() error {
	s.log.Info("streaming server listening", "url", s.baseURL.String())
	err := s.http.Serve(s.listener)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("streaming server on %s: %w", s.Addr(), err)
}

// Stop closes the listener, ends every session (the client connections,
// the Docker connections and the port-forward dials behind them) and waits
// a bounded time for them to finish.
func (s *Server) Stop() {
	s.handlers.close()
	_ = s.http.Close()
	_ = s.listener.Close()
	s.conns.closeAll()
	s.runtime.stop()
	deadline := time.Now().Add(stopTimeout)
	if !s.handlers.wait(time.Until(deadline)) || !s.runtime.wait(time.Until(deadline)) {
		s.log.Warn("streaming sessions still running after stop", "timeout", stopTimeout)
	}
}

// GetExec returns the URL of a new exec session, valid once and briefly.
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	resp, err := s.inner.GetExec(req)
	if err != nil {
		return nil, err
	}
	if err := s.tokens.put(kindExec, resp.Url, req); err != nil {
		return nil, err
	}
	return resp, nil
}

// GetAttach returns the URL of a new attach session, valid once and briefly.
func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	resp, err := s.inner.GetAttach(req)
	if err != nil {
		return nil, err
	}
	if err := s.tokens.put(kindAttach, resp.Url, req); err != nil {
		return nil, err
	}
	return resp, nil
}

// GetPortForward returns the URL of a new port-forward session, valid once
// and briefly.
func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	resp, err := s.inner.GetPortForward(req)
	if err != nil {
		return nil, err
	}
	if err := s.tokens.put(kindPortForward, resp.Url, req); err != nil {
		return nil, err
	}
	return resp, nil
}
