package streaming

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// hungExec is an engine whose exec stream never ends, as Engine 20.10's
// does when the container exits while the exec starts, and whose
// container reports running until exitAfter inspects.
type hungExec struct {
	Docker
	exitAfter int32
	inspects  atomic.Int32
	conns     chan net.Conn
}

func (h *hungExec) ExecCreate(context.Context, string, client.ExecCreateOptions) (client.ExecCreateResult, error) {
	return client.ExecCreateResult{ID: "exec1"}, nil
}

func (h *hungExec) ExecAttach(context.Context, string, client.ExecAttachOptions) (client.ExecAttachResult, error) {
	ours, theirs := net.Pipe()
	h.conns <- theirs
	return client.ExecAttachResult{HijackedResponse: client.NewHijackedResponse(ours, "")}, nil
}

func (h *hungExec) ContainerInspect(context.Context, string, client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	n := h.inspects.Add(1)
	return client.ContainerInspectResult{Container: container.InspectResponse{
		State: &container.State{Running: n < h.exitAfter},
	}}, nil
}

func TestExecSyncEndsWhenContainerExits(t *testing.T) {
	h := &hungExec{exitAfter: 2, conns: make(chan net.Conn, 1)}
	start := time.Now()
	_, _, _, err := ExecSync(t.Context(), h, "c1", []string{"touch", "/stop"}, 30*time.Second, 0)
	took := time.Since(start)
	if !errors.Is(err, ErrContainerExited) {
		t.Fatalf("ExecSync = %v, want ErrContainerExited", err)
	}
	// Two polls (200 ms, 400 ms) and the drain: far less than the timeout.
	if took > 5*time.Second {
		t.Errorf("ExecSync took %v after the container exited", took)
	}
	if n := h.inspects.Load(); n != 2 {
		t.Errorf("%d container inspects, want 2", n)
	}
	theirs := <-h.conns
	if _, err := theirs.Write([]byte{0}); err == nil {
		t.Error("the exec's stream is still open")
	}
}
