package streaming

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Attach connects the client's streams to the container's main process
// until its output ends (the container exited) or ctx ends (the client went
// away). Stdin is attached only if the container was created with stdin
// open; otherwise the client gets output only, as the kubelet expects, and
// what it sends is read and dropped. The container's own tty setting, not
// the request's, decides how its output is framed.
func (r *dockerRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	inspect, err := r.docker.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("attach to container %q: %w", containerID, err)
	}
	c := inspect.Container
	if c.State == nil || !c.State.Running {
		return fmt.Errorf("attach to container %q: not running: %w", containerID, errdefs.ErrFailedPrecondition)
	}
	openStdin, hasTTY := false, false
	if c.Config != nil {
		openStdin, hasTTY = c.Config.OpenStdin, c.Config.Tty
	}
	if in != nil && !openStdin {
		// Nobody reads it otherwise, and an unread WebSocket channel
		// stalls the connection's reader.
		go func(in io.Reader) { _, _ = io.Copy(io.Discard, in) }(in)
		in = nil
	}
	att, err := r.docker.ContainerAttach(ctx, containerID, client.ContainerAttachOptions{
		Stream: true,
		Stdin:  in != nil,
		Stdout: out != nil,
		Stderr: errOut != nil && !hasTTY,
	})
	if err != nil {
		return fmt.Errorf("attach to container %q: %w", containerID, err)
	}
	s := stdio{in: in, tty: hasTTY}
	if out != nil {
		s.out = out
	}
	if errOut != nil {
		s.errOut = errOut
	}
	if hasTTY && tty {
		s.first, s.resize = pendingSize(resize)
		s.setSize = func(ctx context.Context, size remotecommand.TerminalSize) error {
			_, err := r.docker.ContainerResize(ctx, containerID, client.ContainerResizeOptions{Height: uint(size.Height), Width: uint(size.Width)})
			return err
		}
	}
	if err := s.pipe(ctx, att.HijackedResponse, r.log); err != nil {
		return fmt.Errorf("attach to container %q: %w", containerID, err)
	}
	return nil
}
