package prober

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxRetries is how often the kubelet runs a probe that errors (not one
// that fails) before giving up on this period.
const maxRetries = 3

// worker probes one container for one kind.
type worker struct {
	p         *Prober
	key       key
	pod       *corev1.Pod
	podIP     string
	c         *corev1.Container
	spec      *corev1.Probe // defaults applied
	startedAt time.Time
	gate      <-chan struct{} // closed when startup succeeded; nil: no wait
	cancel    context.CancelFunc
	done      chan struct{}
	st        state // only the worker's goroutine touches it
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	if w.gate != nil {
		select {
		case <-w.gate:
		case <-ctx.Done():
			return
		}
	}
	// initialDelaySeconds counts from the container's start, which a
	// startup probe may already have used up.
	delay := time.Duration(w.spec.InitialDelaySeconds)*time.Second - w.p.clock.Since(w.startedAt)
	if delay > 0 {
		t := w.p.clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	ticker := w.p.clock.NewTicker(time.Duration(w.spec.PeriodSeconds) * time.Second)
	defer ticker.Stop()
	for w.probe(ctx) {
		select {
		case <-ticker.C():
		case <-ctx.Done():
			return
		}
	}
}

// probe runs the probe once (retrying errors) and applies the result;
// false ends the worker.
func (w *worker) probe(ctx context.Context) bool {
	var (
		out outcome
		err error
	)
	for i := 0; i < maxRetries; i++ {
		out, err = w.p.run.run(ctx, w.pod, w.podIP, w.c, w.key.containerID, w.spec)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return false
	}
	kind := w.key.kind
	if err != nil {
		w.p.emit(w, "Unhealthy", "%s probe errored and resulted in unknown state: %v", kind, err)
		return true
	}
	switch {
	case out.result == Failure:
		w.p.emit(w, "Unhealthy", "%s probe failed: %s", kind, out.output)
	case out.warning:
		w.p.emit(w, "ProbeWarning", "%s probe warning: %s", kind, out.output)
	}
	changed, done := w.st.record(out.result)
	if changed {
		w.p.set(w, w.st.current, out.output)
	}
	return !done
}
