package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/containerd/errdefs"
)

// PortForward connects stream to 127.0.0.1:port in the pod's network
// namespace and copies both ways. Each side's end of data is passed on as
// a half-close (the program in the pod sees EOF and can still answer, the
// client sees EOF and can still send); it returns once both directions are
// done, or at once if either side breaks.
func (r *dockerRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	if !r.forwards.enter() {
		return errStopped
	}
	defer r.forwards.leave()
	// cri-streaming passes a background context: Stop is what ends it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)()

	if port < 1 || port > 65535 {
		return fmt.Errorf("port-forward to sandbox %q: port %d: %w", podSandboxID, port, errdefs.ErrInvalidArgument)
	}
	pid, hostNetwork, err := r.sandbox(ctx, podSandboxID)
	if err != nil {
		return fmt.Errorf("port-forward to sandbox %q: %w", podSandboxID, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	if hostNetwork {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp4", addr)
	} else {
		conn, err = dialInNetns(ctx, pid, addr)
	}
	if err != nil {
		return fmt.Errorf("port-forward to sandbox %q port %d: %w", podSandboxID, port, err)
	}
	if err := proxy(ctx, conn, stream); err != nil {
		return fmt.Errorf("port-forward to sandbox %q port %d: %w", podSandboxID, port, err)
	}
	return nil
}

type closeWriter interface{ CloseWrite() error }

// proxy copies between the pod's connection and the client's stream until
// both directions ended, one of them broke, or ctx ended.
func proxy(ctx context.Context, conn net.Conn, stream io.ReadWriteCloser) error {
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	toPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		if err == nil {
			// The client is done sending.
			if cw, ok := conn.(closeWriter); ok {
				err = cw.CloseWrite()
			}
		} else {
			// The client's stream broke: nothing more will reach the pod.
			conn.Close()
		}
		toPod <- err
	}()

	_, fromPodErr := io.Copy(stream, conn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if fromPodErr != nil {
		// The client cannot be told more; the copy to the pod ends on the
		// closed connection or the broken stream.
		return fmt.Errorf("copy to client: %w", fromPodErr)
	}
	// The pod is done sending: half-close the stream (SPDY sends FIN) and
	// wait for the client to finish.
	_ = stream.Close()
	select {
	case err := <-toPod:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("copy to pod: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
