package streaming

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// ExecSyncOutputLimit is the most of each of stdout and stderr ExecSync
// keeps in berth, as the kubelet's own limit for exec probes.
const ExecSyncOutputLimit = 16 << 20

// ExecSync runs cmd in the container and returns its output and exit code.
// stdout and stderr each keep their first limit bytes (limit <= 0 means
// ExecSyncOutputLimit); the rest is read and dropped. With timeout > 0 the
// call ends after timeout with an error satisfying
// errors.Is(err, context.DeadlineExceeded), and the process and its
// descendants are killed first; they are also killed if ctx ends.
func ExecSync(ctx context.Context, d Docker, containerID string, cmd []string, timeout time.Duration, limit int) (stdout, stderr []byte, exitCode int32, err error) {
	if limit <= 0 {
		limit = ExecSyncOutputLimit
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()

	created, err := d.ExecCreate(runCtx, containerID, client.ExecCreateOptions{
		Cmd:          cmd,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return nil, nil, 0, execSyncError(ctx, runCtx, containerID, timeout, fmt.Errorf("create exec: %w", err))
	}
	execID := created.ID
	outBuf, errBuf := &capBuffer{limit: limit}, &capBuffer{limit: limit}
	code, err := runExecSync(runCtx, d, containerID, execID, outBuf, errBuf)
	if err != nil && runCtx.Err() != nil {
		kctx, kcancel := cleanupContext(ctx)
		defer kcancel()
		if kerr := killExec(kctx, d, execID); kerr != nil {
			err = fmt.Errorf("%w (and %w)", err, kerr)
		}
	}
	if err != nil {
		return outBuf.Bytes(), errBuf.Bytes(), 0, execSyncError(ctx, runCtx, containerID, timeout, fmt.Errorf("exec %q: %w", execID, err))
	}
	return outBuf.Bytes(), errBuf.Bytes(), int32(code), nil
}

// runExecSync starts the exec, reads its output until it ends or ctx ends,
// and returns its exit code.
//
// When the container's main process exits while an exec is being started
// (an exec that tells the container to stop, a probe racing a crash),
// Engine 20.10 can leave the exec's start hanging with its stream open
// until the caller gives up; inspecting that exec blocks too. So once the
// exec has had a moment, the container is watched as well: when it has
// exited, the stream gets streamDrain to end on its own, then the call
// ends with ErrContainerExited.
func runExecSync(ctx context.Context, d Docker, containerID, execID string, stdout, stderr *capBuffer) (int, error) {
	att, err := d.ExecAttach(ctx, execID, client.ExecAttachOptions{})
	if err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	exited := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		if watchContainerExit(watchCtx, d, containerID) {
			close(exited)
		}
	}()
	var drain <-chan time.Time
	for err == nil {
		select {
		case err = <-copied:
			if err == nil {
				return waitExit(ctx, d, execID)
			}
		case <-exited:
			exited = nil
			t := time.NewTimer(streamDrain)
			defer t.Stop()
			drain = t.C
		case <-drain:
			att.Close()
			<-copied
			return 0, fmt.Errorf("%w; the exec's result is unknown", ErrContainerExited)
		case <-ctx.Done():
			att.Close()
			<-copied
			return 0, ctx.Err()
		}
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return 0, fmt.Errorf("read output: %w", err)
}

// ErrContainerExited: the container stopped while an exec ran in it.
var ErrContainerExited = fmt.Errorf("container exited while the exec ran: %w", errdefs.ErrFailedPrecondition)

// Watching starts after execWatchDelay so that a quick exec costs no
// inspect; streamDrain is how long the stream may stay open once the
// container has exited.
const (
	execWatchDelay = 200 * time.Millisecond
	execWatchMax   = time.Second
	streamDrain    = 500 * time.Millisecond
)

// watchContainerExit polls the container until it is no longer running
// and reports true, or false when ctx ends or inspect fails (the stream
// then decides).
func watchContainerExit(ctx context.Context, d Docker, containerID string) bool {
	delay := execWatchDelay
	for {
		if sleepCtx(ctx, delay) != nil {
			return false
		}
		res, err := d.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
		if err != nil {
			return false
		}
		if st := res.Container.State; st != nil && !st.Running {
			return true
		}
		delay = min(2*delay, execWatchMax)
	}
}

// execSyncError names the container and, when the timeout (not the
// caller's context) ended the call, says so around
// context.DeadlineExceeded.
func execSyncError(ctx, runCtx context.Context, containerID string, timeout time.Duration, err error) error {
	if ctx.Err() == nil && runCtx.Err() != nil {
		return fmt.Errorf("exec in container %q: timed out after %s: %w", containerID, timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("exec in container %q: %w", containerID, err)
}

// capBuffer keeps the first limit bytes written to it and drops the rest,
// reporting every write complete so the stream is drained. It never holds
// more than limit bytes of capacity.
type capBuffer struct {
	limit   int
	buf     []byte
	dropped int64
}

func (b *capBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.limit-len(b.buf))
	if n > 0 {
		if need := len(b.buf) + n; need > cap(b.buf) {
			grown := make([]byte, len(b.buf), min(max(2*cap(b.buf), need, 4096), b.limit))
			copy(grown, b.buf)
			b.buf = grown
		}
		b.buf = append(b.buf, p[:n]...)
	}
	b.dropped += int64(len(p) - max(n, 0))
	return len(p), nil
}

// Bytes is what was kept.
func (b *capBuffer) Bytes() []byte { return b.buf }
