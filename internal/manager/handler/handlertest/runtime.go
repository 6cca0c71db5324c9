// Package handlertest gives hook and probe tests a CRI runtime whose
// ExecSync can answer: the published fake of k8s.io/cri-api records the
// call and returns only injected errors, never output or an exit code.
package handlertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	fakeapi "k8s.io/cri-api/pkg/apis/testing"
	criclient "k8s.io/cri-client/pkg"
	utilexec "k8s.io/utils/exec"
)

// ExecCall is one ExecSync the runtime received.
type ExecCall struct {
	ContainerID string
	Cmd         []string
	Timeout     time.Duration
}

// ExecFunc answers an ExecSync.
type ExecFunc func(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)

// Runtime is the cri-api fake with a scriptable ExecSync.
type Runtime struct {
	*fakeapi.FakeRuntimeService

	mu    sync.Mutex
	exec  ExecFunc
	calls []ExecCall
}

// NewRuntime returns a Runtime whose ExecSync succeeds with no output
// until SetExec says otherwise.
func NewRuntime() *Runtime {
	return &Runtime{FakeRuntimeService: fakeapi.NewFakeRuntimeService()}
}

// SetExec makes f answer every later ExecSync.
func (r *Runtime) SetExec(f ExecFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exec = f
}

// ExecCalls returns the ExecSync calls so far.
func (r *Runtime) ExecCalls() []ExecCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ExecCall(nil), r.calls...)
}

// ExecSync records the call, lets the embedded fake return an injected
// error, then asks the script.
func (r *Runtime) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	if _, _, err := r.FakeRuntimeService.ExecSync(ctx, containerID, cmd, timeout); err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	r.calls = append(r.calls, ExecCall{ContainerID: containerID, Cmd: append([]string(nil), cmd...), Timeout: timeout})
	f := r.exec
	r.mu.Unlock()
	if f == nil {
		return nil, nil, nil
	}
	return f(ctx, containerID, cmd, timeout)
}

// Exit answers like cri-client for a command that exited with code:
// the output and a CodeExitError naming the command.
func Exit(stdout, stderr string, code int) ExecFunc {
	return func(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
		var err error
		if code != 0 {
			err = ExitError(cmd, code, stderr)
		}
		return []byte(stdout), []byte(stderr), err
	}
}

// ExitError is cri-client's error for a non-zero exit.
func ExitError(cmd []string, code int, stderr string) error {
	return utilexec.CodeExitError{
		Err:  fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, stderr),
		Code: code,
	}
}

// TimeoutError is cri-client's error for a command past its timeout.
func TimeoutError(cmd []string, timeout time.Duration) error {
	return fmt.Errorf("%w: %q timed out after %s", criclient.ErrCommandTimedOut, strings.Join(cmd, " "), timeout)
}
