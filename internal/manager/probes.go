package manager

import (
	"context"
	"sync"

	"github.com/berth-project/berth/internal/manager/prober"
	corev1 "k8s.io/api/core/v1"
)

// probeState is what the probe workers last reported, by container ID,
// and which container each ID is (for events).
type probeState struct {
	mu       sync.Mutex
	liveness map[string]bool // failed
	startup  map[string]bool // failed
	started  map[string]bool
	ready    map[string]bool
	names    map[string]string
	pod      *corev1.Pod
}

func (p *probeState) init() {
	p.liveness, p.startup = map[string]bool{}, map[string]bool{}
	p.started, p.ready = map[string]bool{}, map[string]bool{}
	p.names = map[string]string{}
}

// results copies the state for computeActions.
func (p *probeState) results() probeResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := probeResults{LivenessFailed: map[string]bool{}, StartupFailed: map[string]bool{}, Started: map[string]bool{}}
	for id, v := range p.liveness {
		r.LivenessFailed[id] = v
	}
	for id, v := range p.startup {
		r.StartupFailed[id] = v
	}
	for id, v := range p.started {
		r.Started[id] = v
	}
	return r
}

func (p *probeState) isReady(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready[id]
}

func (p *probeState) isStarted(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started[id]
}

// probeReport receives every change of a probe's result.
func (m *Manager) probeReport(containerID string, kind prober.Kind, result prober.Result, output string) {
	p := &m.probe
	p.mu.Lock()
	switch kind {
	case prober.Liveness:
		p.liveness[containerID] = result == prober.Failure
	case prober.Startup:
		p.startup[containerID] = result == prober.Failure
		p.started[containerID] = result == prober.Success
	case prober.Readiness:
		p.ready[containerID] = result == prober.Success
	}
	p.mu.Unlock()
	m.poke()
}

// probeEvent shows the prober's per-probe events (Unhealthy for each
// failed probe, as the kubelet records them).
func (m *Manager) probeEvent(containerID string, _ prober.Kind, reason, message string) {
	p := &m.probe
	p.mu.Lock()
	name, pod := p.names[containerID], p.pod
	p.mu.Unlock()
	if pod != nil {
		m.event(containerObject(pod, name), "Warning", reason, "%s", message)
	}
}

// startProbes starts the workers of a container that just started. A
// container without a startup probe counts as started, one without a
// readiness probe as ready.
func (m *Manager) startProbes(ctx context.Context, pod *corev1.Pod, podIP string, c *corev1.Container, containerID string) {
	p := &m.probe
	p.mu.Lock()
	p.names[containerID] = c.Name
	p.pod = pod
	if c.StartupProbe == nil {
		p.started[containerID] = true
	}
	if c.ReadinessProbe == nil {
		p.ready[containerID] = true
	}
	p.mu.Unlock()
	for _, pr := range []struct {
		kind  prober.Kind
		probe *corev1.Probe
	}{{prober.Startup, c.StartupProbe}, {prober.Liveness, c.LivenessProbe}, {prober.Readiness, c.ReadinessProbe}} {
		if pr.probe == nil {
			continue
		}
		// Probes were validated before the pod started; an error here is
		// the prober's own.
		if err := m.probes.Start(ctx, pod, podIP, c, containerID, pr.kind, pr.probe); err != nil {
			m.event(containerObject(pod, c.Name), "Warning", "Unhealthy", "%v", err)
		}
	}
}

// stopProbes ends a container's workers and forgets its results.
func (m *Manager) stopProbes(containerID string) {
	m.probes.Stop(containerID)
	p := &m.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.liveness, containerID)
	delete(p.startup, containerID)
	delete(p.ready, containerID)
}

// known: the container's probes were started by this run.
func (p *probeState) known(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.names[id]
	return ok
}
