// Package prober runs a container's startup, liveness and readiness
// probes as the kubelet's prober and probe workers do: one goroutine per
// probe, an initial delay, a probe every period with its timeout, and a
// result that changes only after failureThreshold consecutive failures or
// successThreshold consecutive successes.
package prober

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/berth-project/berth/internal/manager/handler"
	corev1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	"k8s.io/utils/clock"
)

// Result is a probe's state as the kubelet's results manager keeps it.
type Result int

// Results.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "Unknown"
}

// Kind is which of a container's probes.
type Kind int

// Kinds.
const (
	Startup Kind = iota
	Liveness
	Readiness
)

// String is the kubelet's name for the kind, as its events print it.
func (k Kind) String() string {
	switch k {
	case Startup:
		return "Startup"
	case Liveness:
		return "Liveness"
	}
	return "Readiness"
}

// field is the Container field that holds the probe.
func (k Kind) field() string {
	switch k {
	case Startup:
		return "startupProbe"
	case Liveness:
		return "livenessProbe"
	}
	return "readinessProbe"
}

// initial is the result a worker starts from, as in the kubelet: a
// container is not ready until a readiness probe succeeds, alive until a
// liveness probe says otherwise, and neither started nor failed until its
// startup probe says.
func (k Kind) initial() Result {
	switch k {
	case Readiness:
		return Failure
	case Liveness:
		return Success
	}
	return Unknown
}

// Options configure a Prober.
type Options struct {
	// Runtime runs exec probes. Required.
	Runtime internalapi.RuntimeService
	// HTTPClient sends httpGet probes; default handler.NewHTTPClient over
	// Dialer. Its Timeout is replaced by each probe's timeoutSeconds.
	HTTPClient *http.Client
	// Dialer reaches the pod for tcpSocket and grpc probes and the default
	// HTTPClient; default net.Dialer.
	Dialer handler.DialFunc
	// Report is called from the worker's goroutine each time a probe's
	// result changes (not for the initial result, see Result), with the
	// output of the probe that changed it. It must not call Stop.
	Report func(containerID string, kind Kind, result Result, output string)
	// Event, when set, gets the kubelet's per-probe warning events: reason
	// "Unhealthy" for every failed or errored probe ("Liveness probe
	// failed: <output>"), "ProbeWarning" for an HTTP redirect to another
	// host. The kubelet emits these on every probe, not only on a change.
	Event func(containerID string, kind Kind, reason, message string)
	// Clock drives delays and periods; default the real clock.
	Clock clock.WithTicker
}

// Prober runs probe workers.
type Prober struct {
	run    runner
	report func(containerID string, kind Kind, result Result, output string)
	event  func(containerID string, kind Kind, reason, message string)
	clock  clock.WithTicker

	mu      sync.Mutex
	workers map[key]*worker
	results map[key]Result
	started map[string]chan struct{}
}

type key struct {
	containerID string
	kind        Kind
}

// New returns a Prober.
func New(opts Options) (*Prober, error) {
	if opts.Runtime == nil {
		return nil, errors.New("prober: Options.Runtime is required")
	}
	p := &Prober{
		run:     newRunner(opts.Runtime, opts.HTTPClient, opts.Dialer),
		report:  opts.Report,
		event:   opts.Event,
		clock:   opts.Clock,
		workers: map[key]*worker{},
		results: map[key]Result{},
		started: map[string]chan struct{}{},
	}
	if p.clock == nil {
		p.clock = clock.RealClock{}
	}
	return p, nil
}

// Start runs a worker for the probe of kind of the container until
// Stop(containerID) or ctx ends. Call it when the container has started:
// initialDelaySeconds counts from here. Liveness and readiness wait for
// the startup probe to succeed when the container has one. A probe the
// kubelet would refuse is an error naming the field (see Validate).
func (p *Prober) Start(ctx context.Context, pod *corev1.Pod, podIP string, c *corev1.Container, containerID string, kind Kind, probe *corev1.Probe) error {
	if err := Validate(kind, probe, c); err != nil {
		return fmt.Errorf("container %q: %w", c.Name, err)
	}
	k := key{containerID, kind}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.workers[k]; ok {
		return fmt.Errorf("container %q (%s): %s probe already running", c.Name, containerID, kind)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{
		p: p, key: k, pod: pod, podIP: podIP, c: c,
		spec:      withDefaults(probe),
		startedAt: p.clock.Now(),
		cancel:    cancel,
		done:      make(chan struct{}),
		st:        newState(kind, withDefaults(probe)),
	}
	if kind != Startup && c.StartupProbe != nil {
		w.gate = p.startedLocked(containerID)
	}
	p.workers[k] = w
	p.results[k] = kind.initial()
	go w.run(wctx)
	return nil
}

// Stop ends every worker of the container, waits for them, and forgets
// their results.
func (p *Prober) Stop(containerID string) {
	p.mu.Lock()
	var ws []*worker
	for _, kind := range []Kind{Startup, Liveness, Readiness} {
		k := key{containerID, kind}
		if w, ok := p.workers[k]; ok {
			ws = append(ws, w)
			delete(p.workers, k)
		}
		delete(p.results, k)
	}
	delete(p.started, containerID)
	p.mu.Unlock()
	for _, w := range ws {
		w.cancel()
		<-w.done
	}
}

// Result is the current result of the container's probe of kind: the
// kind's initial result until a threshold changes it, Unknown when no
// worker was started.
func (p *Prober) Result(containerID string, kind Kind) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.results[key{containerID, kind}]
}

// StartupSucceeded lets the liveness and readiness workers of the
// container begin, as a successful startup probe does.
func (p *Prober) StartupSucceeded(containerID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	closeOnce(p.startedLocked(containerID))
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (p *Prober) startedLocked(containerID string) chan struct{} {
	ch, ok := p.started[containerID]
	if !ok {
		ch = make(chan struct{})
		p.started[containerID] = ch
	}
	return ch
}

// set records a worker's new result and reports it, unless Stop has
// already let go of the worker.
func (p *Prober) set(w *worker, r Result, output string) {
	p.mu.Lock()
	if p.workers[w.key] != w {
		p.mu.Unlock()
		return
	}
	p.results[w.key] = r
	if w.key.kind == Startup && r == Success {
		closeOnce(p.startedLocked(w.key.containerID))
	}
	p.mu.Unlock()
	if p.report != nil {
		p.report(w.key.containerID, w.key.kind, r, output)
	}
}

func (p *Prober) emit(w *worker, reason, format string, args ...any) {
	if p.event != nil {
		p.event(w.key.containerID, w.key.kind, reason, fmt.Sprintf(format, args...))
	}
}
