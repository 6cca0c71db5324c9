package streaming

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/streaming/pkg/httpstream/wsstream"
)

var errStopped = errors.New("streaming server stopped")

// serveHTTP consumes the URL's token and hands the session to whoever
// serves its protocol:
//   - exec and attach over WebSocket v5.channel.k8s.io: serveV5 (cri-streaming
//     v0.37.2 stops at v4 on WebSocket, without the CLOSE that ends stdin);
//   - port-forward tunnelled over WebSocket (SPDY/3.1+portforward.k8s.io):
//     serveTunnel, which upgrades the WebSocket and lets cri-streaming run
//     SPDY inside it;
//   - everything else (SPDY, WebSocket v1-v4): cri-streaming.
func (s *Server) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if !s.handlers.enter() {
		http.Error(w, errStopped.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.leave()

	kind, token, ok := splitPath(req.URL.Path)
	if !ok {
		http.NotFound(w, req)
		return
	}
	pending, ok := s.tokens.take(kind, token)
	if !ok {
		http.NotFound(w, req)
		return
	}
	req, cancel := sessionContext(req)
	defer cancel()
	tw := &trackingWriter{ResponseWriter: w, conns: &s.conns, cancel: cancel}

	switch {
	case kind != kindPortForward && wsstream.IsWebSocketRequestWithStreamCloseProtocol(req):
		s.serveV5(tw, req, pending)
	case kind == kindPortForward && wsstream.IsWebSocketRequestWithTunnelingProtocol(req):
		s.serveTunnel(tw, req)
	default:
		s.inner.ServeHTTP(tw, req)
	}
}

// sessionContext is the context of one streaming request: it ends when the
// client's connection ends (a hijacked connection no longer cancels the
// request's context) or when the handler returns.
func sessionContext(req *http.Request) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(req.Context())
	return req.WithContext(ctx), cancel
}

// trackingWriter hands out hijacked connections that end the session's
// context when the client goes away and that Stop can close.
//
// It deliberately has no Unwrap: cri-streaming unwraps writers before the
// WebSocket upgrade and must hijack through this one.
type trackingWriter struct {
	http.ResponseWriter
	conns  *connSet
	cancel context.CancelFunc
}

func (w *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("streaming: connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: c, r: rw.Reader, cancel: w.cancel, conns: w.conns}
	if !w.conns.add(wc) {
		c.Close()
		w.cancel()
		return nil, nil, errStopped
	}
	// Reads must go through wc, so buffered bytes are read from rw.Reader
	// by wc and the returned reader wraps wc.
	return wc, bufio.NewReadWriter(bufio.NewReader(wc), rw.Writer), nil
}

func (w *trackingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// watchedConn is a hijacked client connection. The upgraded protocols
// (SPDY, WebSocket) read it continuously, so a failed read means the
// client went away (or the session closed it): either ends the session.
type watchedConn struct {
	net.Conn
	r      *bufio.Reader
	cancel context.CancelFunc
	conns  *connSet
	once   sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.cancel()
	c.once.Do(func() { c.conns.remove(c) })
	return c.Conn.Close()
}

// connSet holds the hijacked connections of running sessions.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[*watchedConn]struct{}
}

func (s *connSet) add(c *watchedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[*watchedConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *watchedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// closeAll closes every connection and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*watchedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// gate counts work in flight and refuses new work once closed, so waiting
// for the count never races with a late start.
type gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *gate) leave() { g.wg.Done() }

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// wait waits for the work in flight, at most d; false if it is still running.
func (g *gate) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
