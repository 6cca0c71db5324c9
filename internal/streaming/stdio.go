package streaming

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// stdio is one session's streams and how to resize its terminal.
type stdio struct {
	in          io.Reader // nil: no stdin
	out, errOut io.Writer // nil: discarded
	// tty: Docker sends one raw stream; otherwise stdout and stderr
	// multiplexed (stdcopy).
	tty bool
	// first is a size that arrived before the process started.
	first  *remotecommand.TerminalSize
	resize <-chan remotecommand.TerminalSize
	// setSize resizes the terminal; nil when there is none.
	setSize func(ctx context.Context, size remotecommand.TerminalSize) error
}

// pipe connects the streams to Docker's hijacked connection until the
// output ends or ctx ends; either way the connection is closed when it
// returns. Stdin is copied in and the write side closed when it ends, so
// the process reads EOF; the copy ends once the client's stdin ends, which
// the session's end brings about.
func (s stdio) pipe(ctx context.Context, conn client.HijackedResponse, log *slog.Logger) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, conn.Close)
	defer stop()

	if s.setSize != nil && (s.first != nil || s.resize != nil) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { s.resizeLoop(ctx, done, log) })
		defer wg.Wait()
		defer close(done)
	}
	if s.in != nil {
		go func() {
			_, _ = io.Copy(conn.Conn, s.in)
			_ = conn.CloseWrite()
		}()
	}

	out := orDiscard(s.out)
	var err error
	if s.tty {
		_, err = io.Copy(out, conn.Reader)
	} else {
		_, err = stdcopy.StdCopy(out, orDiscard(s.errOut), conn.Reader)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// resizeLoop applies the first size, then each one the client sends, until
// done or ctx ends.
func (s stdio) resizeLoop(ctx context.Context, done <-chan struct{}, log *slog.Logger) {
	apply := func(size remotecommand.TerminalSize) {
		if size.Width == 0 && size.Height == 0 {
			return
		}
		if err := s.setSize(ctx, size); err != nil && ctx.Err() == nil {
			log.Debug("resize terminal", "width", size.Width, "height", size.Height, "error", err)
		}
	}
	if s.first != nil {
		apply(*s.first)
	}
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case size, ok := <-s.resize:
			if !ok {
				return
			}
			apply(size)
		}
	}
}

// pendingSize takes a size the client already sent, without waiting: it
// becomes the process's initial size.
func pendingSize(resize <-chan remotecommand.TerminalSize) (*remotecommand.TerminalSize, <-chan remotecommand.TerminalSize) {
	if resize == nil {
		return nil, nil
	}
	select {
	case size, ok := <-resize:
		if !ok {
			return nil, nil
		}
		return &size, resize
	default:
		return nil, resize
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
