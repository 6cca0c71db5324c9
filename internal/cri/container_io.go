package cri

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Streaming is exec, attach and port-forward as the handlers use them: the
// URLs of the streaming server and synchronous exec.
type Streaming interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error)
}

// Logs writes containers' CRI log files.
type Logs interface {
	Prepare(path string) error
	Start(ctx context.Context, containerID, path string) error
	Reopen(ctx context.Context, containerID string) error
	// Wait returns once the copier of an exited container has written
	// everything.
	Wait(ctx context.Context, containerID string) error
	Forget(containerID string) error
}

// runningContainer is a container berth made that is running now: exec,
// attach and reopen need one.
func (s *Service) runningContainer(ctx context.Context, id string) (inspected, error) {
	c, err := s.inspectOwned(ctx, id, naming.TypeContainer)
	if err != nil {
		return inspected{}, err
	}
	if c.c.State == nil || !c.c.State.Running {
		return inspected{}, fmt.Errorf("container %s is not running: %w", c.c.ID, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

func (s *Service) streamingOrUnimplemented(rpc string) error {
	if s.streaming == nil {
		return fmt.Errorf("%s: no streaming server configured: %w", rpc, errdefs.ErrNotImplemented)
	}
	return nil
}

// execSyncBudget is how much output an ExecSync answer carries, stdout and
// stderr together: the kubelet's and crictl's CRI clients accept messages
// of at most 16 MiB, so a larger answer would reach no one. The rest of a
// message is a few bytes of framing.
const execSyncBudget = 16<<20 - 4<<10

// capOutput cuts stdout and stderr to budget bytes together: a stream
// within half the budget keeps all it has and the other gets the rest.
func capOutput(stdout, stderr []byte, budget int) ([]byte, []byte) {
	half := budget / 2
	switch {
	case len(stdout)+len(stderr) <= budget:
	case len(stdout) <= half:
		stderr = stderr[:budget-len(stdout)]
	case len(stderr) <= half:
		stdout = stdout[:budget-len(stderr)]
	default:
		stdout, stderr = stdout[:half], stderr[:budget-half]
	}
	return stdout, stderr
}

// ExecSync runs a command in a container and returns its output and exit
// code. A timeout ends the call with DeadlineExceeded, and the command with
// it.
func (s *Service) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if err := s.streamingOrUnimplemented("ExecSync"); err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd: empty: %w", errdefs.ErrInvalidArgument)
	}
	if req.GetTimeout() < 0 {
		return nil, fmt.Errorf("timeout: %d is negative: %w", req.GetTimeout(), errdefs.ErrInvalidArgument)
	}
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(req.GetTimeout()) * time.Second
	stdout, stderr, code, err := s.streaming.ExecSync(ctx, c.c.ID, req.GetCmd(), timeout)
	stdout, stderr = capOutput(stdout, stderr, execSyncBudget)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("exec in container %s: timed out after %v: %w", c.c.ID, timeout, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("exec in container %s: %w", c.c.ID, err)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout, Stderr: stderr, ExitCode: code}, nil
}

// Exec returns the URL of an exec session on the streaming server.
func (s *Service) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := s.streamingOrUnimplemented("Exec"); err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd: empty: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	full := &runtimeapi.ExecRequest{
		ContainerId: c.c.ID, Cmd: req.GetCmd(), Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	}
	resp, err := s.streaming.GetExec(full)
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.c.ID, err)
	}
	return resp, nil
}

// Attach returns the URL of an attach session on the streaming server.
func (s *Service) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := s.streamingOrUnimplemented("Attach"); err != nil {
		return nil, err
	}
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	full := &runtimeapi.AttachRequest{
		ContainerId: c.c.ID, Stdin: req.GetStdin(), Tty: req.GetTty(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	}
	resp, err := s.streaming.GetAttach(full)
	if err != nil {
		return nil, fmt.Errorf("attach to container %s: %w", c.c.ID, err)
	}
	return resp, nil
}

// PortForward returns the URL of a port-forward session into a sandbox's
// network namespace.
func (s *Service) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if err := s.streamingOrUnimplemented("PortForward"); err != nil {
		return nil, err
	}
	for i, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port[%d]: %d is not a TCP port: %w", i, p, errdefs.ErrInvalidArgument)
		}
	}
	sb, err := s.inspectOwned(ctx, req.GetPodSandboxId(), naming.TypeSandbox)
	if err != nil {
		return nil, err
	}
	if sb.c.State == nil || !sb.c.State.Running {
		return nil, fmt.Errorf("sandbox %s is not running: %w", sb.c.ID, errdefs.ErrFailedPrecondition)
	}
	resp, err := s.streaming.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: sb.c.ID, Port: req.GetPort()})
	if err != nil {
		return nil, fmt.Errorf("port-forward to sandbox %s: %w", sb.c.ID, err)
	}
	return resp, nil
}

// SandboxNetNS tells the streaming server where a sandbox's network is:
// the pause process's pid, or the host's network.
func (s *Service) SandboxNetNS(ctx context.Context, sandboxID string) (pid int, hostNetwork bool, err error) {
	sb, err := s.inspectOwned(ctx, sandboxID, naming.TypeSandbox)
	if err != nil {
		return 0, false, err
	}
	if sb.c.HostConfig != nil && sb.c.HostConfig.NetworkMode.IsHost() {
		return 0, true, nil
	}
	if sb.c.State == nil || !sb.c.State.Running || sb.c.State.Pid == 0 {
		return 0, false, fmt.Errorf("sandbox %s is not running: %w", sb.c.ID, errdefs.ErrFailedPrecondition)
	}
	return sb.c.State.Pid, false, nil
}

// ReopenContainerLog reopens a running container's log file after the
// kubelet renamed it.
func (s *Service) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if s.logs == nil || c.labels.LogPath == "" {
		return nil, fmt.Errorf("container %s has no log path: %w", c.c.ID, errdefs.ErrFailedPrecondition)
	}
	if err := s.logs.Reopen(ctx, c.c.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// ResumeLogs starts the log copiers of every container berth made that has
// a log path, once at start: each resumes after the last record its file
// holds, and one whose container has exited copies what is left and ends.
func (s *Service) ResumeLogs(ctx context.Context) error {
	if s.logs == nil {
		return nil
	}
	items, err := s.list(ctx, listQuery{typ: naming.TypeContainer})
	if err != nil {
		return err
	}
	var errs []error
	for _, it := range items {
		d := it.labels
		if d.LogPath == "" || summaryState(it.State) == runtimeapi.ContainerState_CONTAINER_CREATED {
			continue
		}
		// Only this berth's containers: another berth (another root) on
		// the same Docker daemon copies its own.
		if _, err := s.sandboxes.Read(d.SandboxID); err != nil {
			continue
		}
		if err := s.logs.Start(ctx, it.ID, d.LogPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
