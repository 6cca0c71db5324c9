package streaming

import (
	"context"
	"log/slog"
	"time"

	cristreaming "k8s.io/cri-streaming/pkg/streaming"
)

// dockerRuntime is the cri-streaming Runtime over Docker.
type dockerRuntime struct {
	docker  Docker
	sandbox SandboxResolver
	log     *slog.Logger

	// ctx ends at Stop. cri-streaming hands port-forward a background
	// context, so this is what ends a forward whose client vanished.
	ctx      context.Context
	cancel   context.CancelFunc
	forwards gate
}

var _ cristreaming.Runtime = (*dockerRuntime)(nil)

func newDockerRuntime(d Docker, sandbox SandboxResolver, log *slog.Logger) *dockerRuntime {
	ctx, cancel := context.WithCancel(context.Background())
	return &dockerRuntime{docker: d, sandbox: sandbox, log: log, ctx: ctx, cancel: cancel}
}

// stop ends every port-forward and refuses new ones.
func (r *dockerRuntime) stop() {
	r.forwards.close()
	r.cancel()
}

// wait waits at most d for the port-forwards to end.
func (r *dockerRuntime) wait(d time.Duration) bool {
	return r.forwards.wait(d)
}

// cleanupContext is for work that must happen after ctx ended (killing
// what the session left running): ctx's values, a deadline of its own.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
}
