package prober

import corev1 "k8s.io/api/core/v1"

// state is a worker's threshold logic, apart from time and I/O so it can
// be table-tested: the kubelet's worker.doProbe after the probe ran.
type state struct {
	kind             Kind
	successThreshold int
	failureThreshold int
	current          Result // what Result reports
	last             Result // the previous probe's result
	run              int    // how many probes in a row gave last
}

func newState(kind Kind, spec *corev1.Probe) state {
	return state{
		kind:             kind,
		successThreshold: int(spec.SuccessThreshold),
		failureThreshold: int(spec.FailureThreshold),
		current:          kind.initial(),
	}
}

// record takes one probe's result (Success or Failure; errored probes
// never get here, the kubelet throws them away). changed: current moved.
// done: the worker stops probing, because a startup probe succeeded or a
// liveness or startup probe failed; the container is restarted under a
// new ID and gets new workers, and probing a dying container only races
// its stop.
func (s *state) record(r Result) (changed, done bool) {
	if r == s.last {
		s.run++
	} else {
		s.last, s.run = r, 1
	}
	if (r == Failure && s.run < s.failureThreshold) || (r == Success && s.run < s.successThreshold) {
		return false, false
	}
	changed = s.current != r
	s.current = r
	switch {
	case r == Failure && (s.kind == Liveness || s.kind == Startup):
		s.run = 0
		done = true
	case r == Success && s.kind == Startup:
		done = true
	}
	return changed, done
}
