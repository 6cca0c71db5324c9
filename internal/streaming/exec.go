package streaming

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// Exec runs cmd in the container with the client's streams. A non-zero
// exit is a utilexec.CodeExitError, which cri-streaming (and serveV5) tell
// the client as the exit code. When ctx ends (the client went away) the
// command is killed: it must not outlive its session.
func (r *dockerRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	var first *remotecommand.TerminalSize
	if tty {
		first, resize = pendingSize(resize)
	} else {
		resize = nil
	}
	var size client.ConsoleSize
	if first != nil {
		// Engines on API 1.42+ start the process with it; older ones get
		// it from ExecResize once the process runs.
		size = client.ConsoleSize{Height: uint(first.Height), Width: uint(first.Width)}
	}
	created, err := r.docker.ExecCreate(ctx, containerID, client.ExecCreateOptions{
		Cmd:          cmd,
		TTY:          tty,
		ConsoleSize:  size,
		AttachStdin:  in != nil,
		AttachStdout: out != nil,
		AttachStderr: errOut != nil && !tty,
	})
	if err != nil {
		return fmt.Errorf("create exec in container %q: %w", containerID, err)
	}
	execID := created.ID
	att, err := r.docker.ExecAttach(ctx, execID, client.ExecAttachOptions{TTY: tty, ConsoleSize: size})
	if err != nil {
		r.killExec(ctx, execID)
		return fmt.Errorf("start exec %q in container %q: %w", execID, containerID, err)
	}
	s := stdio{in: in, tty: tty, first: first, resize: resize}
	if out != nil {
		s.out = out
	}
	if errOut != nil {
		s.errOut = errOut
	}
	if tty {
		s.setSize = func(ctx context.Context, size remotecommand.TerminalSize) error {
			_, err := r.docker.ExecResize(ctx, execID, client.ExecResizeOptions{Height: uint(size.Height), Width: uint(size.Width)})
			return err
		}
	}
	if err := s.pipe(ctx, att.HijackedResponse, r.log); err != nil {
		r.killExec(ctx, execID)
		return fmt.Errorf("exec %q in container %q: %w", execID, containerID, err)
	}
	code, err := waitExit(ctx, r.docker, execID)
	if err != nil {
		r.killExec(ctx, execID)
		return fmt.Errorf("exec %q in container %q: %w", execID, containerID, err)
	}
	if code != 0 {
		// Unwrapped: cri-streaming type-asserts utilexec.ExitError.
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// killExec kills what is left of an exec whose session ended early.
func (r *dockerRuntime) killExec(ctx context.Context, execID string) {
	kctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := killExec(kctx, r.docker, execID); err != nil {
		r.log.Warn("kill exec after its session ended", "exec", execID, "error", err)
	}
}

// waitExit returns the exit code of an exec whose streams have ended. The
// engine may report it running for a moment after that.
func waitExit(ctx context.Context, d Docker, execID string) (int, error) {
	delay := 2 * time.Millisecond
	for {
		res, err := d.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			return 0, fmt.Errorf("inspect exec: %w", err)
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return 0, err
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
