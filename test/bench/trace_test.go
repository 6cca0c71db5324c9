//go:build linux

package bench

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/cri"
	"github.com/berth-project/berth/internal/docker"
	"github.com/berth-project/berth/internal/network"
	"github.com/moby/moby/client"
)

// recorder sums the time of named steps within the sample being
// measured. Steps are recorded under the current scope ("RunPodSandbox",
// "start", ...) as "scope/name". The driver is sequential; the mutex is
// for berth's server goroutines.
type recorder struct {
	mu    sync.Mutex
	scope string
	cur   *steps
}

// steps is one sample's breakdown: total time and count per step, in the
// order the steps first happened.
type steps struct {
	order  []string
	total  map[string]time.Duration
	counts map[string]int
}

func newSteps() *steps {
	return &steps{total: map[string]time.Duration{}, counts: map[string]int{}}
}

// begin starts a new sample's breakdown.
func (r *recorder) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = newSteps()
	r.scope = ""
}

// end returns the sample's breakdown.
func (r *recorder) end() *steps {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.cur
	r.cur = nil
	return s
}

func (r *recorder) setScope(scope string) {
	r.mu.Lock()
	r.scope = scope
	r.mu.Unlock()
}

func (r *recorder) add(name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return
	}
	if r.scope != "" {
		name = r.scope + "/" + name
	}
	if _, ok := r.cur.total[name]; !ok {
		r.cur.order = append(r.cur.order, name)
	}
	r.cur.total[name] += d
	r.cur.counts[name]++
}

// since records the time since start under name: defer r.since("x", time.Now()).
func (r *recorder) since(name string, start time.Time) {
	r.add(name, time.Since(start))
}

// step runs fn as the step name.
func (r *recorder) step(name string, fn func() error) error {
	defer r.since(name, time.Now())
	return fn()
}

// tracedDocker times every Docker call berth makes.
type tracedDocker struct {
	docker.API
	rec *recorder
}

func (d tracedDocker) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	defer d.rec.since("docker create", time.Now())
	return d.API.ContainerCreate(ctx, o)
}

func (d tracedDocker) ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error) {
	defer d.rec.since("docker start", time.Now())
	return d.API.ContainerStart(ctx, id, o)
}

func (d tracedDocker) ContainerStop(ctx context.Context, id string, o client.ContainerStopOptions) (client.ContainerStopResult, error) {
	defer d.rec.since("docker stop", time.Now())
	return d.API.ContainerStop(ctx, id, o)
}

func (d tracedDocker) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	defer d.rec.since("docker remove", time.Now())
	return d.API.ContainerRemove(ctx, id, o)
}

func (d tracedDocker) ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	defer d.rec.since("docker inspect", time.Now())
	return d.API.ContainerInspect(ctx, id, o)
}

func (d tracedDocker) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	defer d.rec.since("docker list", time.Now())
	return d.API.ContainerList(ctx, o)
}

func (d tracedDocker) ContainerUpdate(ctx context.Context, id string, o client.ContainerUpdateOptions) (client.ContainerUpdateResult, error) {
	defer d.rec.since("docker update", time.Now())
	return d.API.ContainerUpdate(ctx, id, o)
}

func (d tracedDocker) ImageInspect(ctx context.Context, id string, o ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	defer d.rec.since("docker image inspect", time.Now())
	return d.API.ImageInspect(ctx, id, o...)
}

// tracedNetwork times berth's CNI ADD and DEL.
type tracedNetwork struct {
	cri.Network
	rec *recorder
}

func (n tracedNetwork) Setup(ctx context.Context, a network.Attachment) (network.Result, error) {
	defer n.rec.since("cni add", time.Now())
	return n.Network.Setup(ctx, a)
}

func (n tracedNetwork) Teardown(ctx context.Context, a network.Attachment) error {
	defer n.rec.since("cni del", time.Now())
	return n.Network.Teardown(ctx, a)
}

// rpcLog is berth's logger: it formats records as `berth serve` does (to
// io.Discard, so the cost stays) and records the handler time that
// criserver's interceptor logs for every call.
type rpcLog struct {
	slog.Handler
	rec *recorder
}

func newRPCLog(rec *recorder) *slog.Logger {
	return slog.New(rpcLog{slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}), rec})
}

func (h rpcLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "cri call" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "duration" {
				h.rec.add("handler", a.Value.Duration())
				return false
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h rpcLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return rpcLog{h.Handler.WithAttrs(attrs), h.rec}
}

func (h rpcLog) WithGroup(name string) slog.Handler {
	return rpcLog{h.Handler.WithGroup(name), h.rec}
}
