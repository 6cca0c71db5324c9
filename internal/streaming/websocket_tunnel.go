package streaming

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// serveTunnel serves port-forward to a client that tunnels SPDY through a
// WebSocket (client-go's NewSPDYOverWebsocketDialer, subprotocol
// "SPDY/3.1+portforward.k8s.io"): cri-streaming sees an ordinary SPDY
// upgrade whose hijacked connection is the WebSocket.
func (s *Server) serveTunnel(w http.ResponseWriter, req *http.Request) {
	spdyReq := req.Clone(req.Context())
	spdyReq.Header = tunnelledHeader(req.Header)
	tw := &tunnelWriter{w: w, wsReq: req, header: http.Header{}}
	s.inner.ServeHTTP(tw, spdyReq)
}

// tunnelledHeader turns a WebSocket tunnelling upgrade's header into the
// SPDY upgrade's: the protocols without the tunnelling prefix, the SPDY
// upgrade, no WebSocket fields.
func tunnelledHeader(h http.Header) http.Header {
	out := h.Clone()
	var protocols []string
	for _, v := range h.Values(wsstream.WebSocketProtocolHeader) {
		for p := range strings.SplitSeq(v, ",") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(p), portforward.WebsocketsSPDYTunnelingPrefix); ok {
				protocols = append(protocols, rest)
			}
		}
	}
	for k := range out {
		if strings.HasPrefix(k, "Sec-Websocket-") {
			delete(out, k)
		}
	}
	out.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	out.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	out[httpstream.HeaderProtocolVersion] = protocols
	return out
}

// tunnelWriter is the ResponseWriter cri-streaming upgrades to SPDY: the
// 101 it writes becomes the WebSocket upgrade, and Hijack returns the
// WebSocket as a net.Conn. Any other reply goes to the client as is.
type tunnelWriter struct {
	w      http.ResponseWriter
	wsReq  *http.Request
	header http.Header

	wroteHeader bool
	conn        net.Conn
	upgradeErr  error
}

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) WriteHeader(code int) {
	if t.wroteHeader {
		return
	}
	t.wroteHeader = true
	if code != http.StatusSwitchingProtocols {
		maps.Copy(t.w.Header(), t.header)
		t.w.WriteHeader(code)
		return
	}
	protocol := t.header.Get(httpstream.HeaderProtocolVersion)
	up := websocket.Upgrader{
		Subprotocols: []string{portforward.WebsocketsSPDYTunnelingPrefix + protocol},
		// The single-use token is the credential, as for SPDY.
		CheckOrigin:      func(*http.Request) bool { return true },
		HandshakeTimeout: 30 * time.Second,
	}
	ws, err := up.Upgrade(t.w, t.wsReq, nil)
	if err != nil {
		t.upgradeErr = err // Upgrade has answered the client
		return
	}
	t.conn = &wsConn{ws: ws}
}

func (t *tunnelWriter) Write(p []byte) (int, error) {
	if !t.wroteHeader {
		t.WriteHeader(http.StatusOK)
	}
	if t.conn != nil || t.upgradeErr != nil {
		return 0, errors.New("streaming: write after upgrade")
	}
	return t.w.Write(p)
}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.conn == nil {
		return nil, nil, fmt.Errorf("streaming: websocket upgrade: %w", errors.Join(t.upgradeErr, errors.New("not upgraded")))
	}
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}

// wsConn is a WebSocket carrying a byte stream in binary messages, the
// server side of client-go's TunnelingConnection.
type wsConn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read

	wmu       sync.Mutex
	closeOnce sync.Once
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, fmt.Errorf("streaming: tunnel: unexpected websocket message type %d", typ)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		err = c.ws.Close()
	})
	return err
}

func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}

func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
