package prober

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestStateThresholds(t *testing.T) {
	const S, F = Success, Failure
	type step struct {
		Index  int
		Result Result
	}
	for _, tc := range []struct {
		name     string
		kind     Kind
		success  int32
		failure  int32
		probes   []Result
		want     []step // reported changes: which probe, to what
		wantDone int    // index of the probe that ends the worker, -1 none
	}{
		{name: "readiness starts not ready, one success makes it ready", kind: Readiness, success: 1, failure: 3,
			probes: []Result{S, S}, want: []step{{0, S}}, wantDone: -1},
		{name: "readiness needs successThreshold in a row", kind: Readiness, success: 3, failure: 3,
			probes: []Result{S, S, F, S, S, S}, want: []step{{5, S}}, wantDone: -1},
		{name: "readiness goes unready after failureThreshold and back", kind: Readiness, success: 1, failure: 2,
			probes: []Result{S, F, S, F, F, F, S}, want: []step{{0, S}, {4, F}, {6, S}}, wantDone: -1},
		{name: "liveness failures below threshold change nothing", kind: Liveness, success: 1, failure: 3,
			probes: []Result{F, F, S, F, F, S}, want: nil, wantDone: -1},
		{name: "liveness fails after threshold and stops", kind: Liveness, success: 1, failure: 3,
			probes: []Result{F, S, F, F, F}, want: []step{{4, F}}, wantDone: 4},
		{name: "liveness threshold 1", kind: Liveness, success: 1, failure: 1,
			probes: []Result{S, F}, want: []step{{1, F}}, wantDone: 1},
		{name: "startup succeeds once and stops", kind: Startup, success: 1, failure: 30,
			probes: []Result{F, F, S}, want: []step{{2, S}}, wantDone: 2},
		{name: "startup fails after threshold", kind: Startup, success: 1, failure: 2,
			probes: []Result{F, F}, want: []step{{1, F}}, wantDone: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newState(tc.kind, &corev1.Probe{SuccessThreshold: tc.success, FailureThreshold: tc.failure})
			var got []step
			done := -1
			for i, r := range tc.probes {
				changed, d := st.record(r)
				if changed {
					got = append(got, step{i, st.current})
				}
				if d {
					done = i
					break
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if done != tc.wantDone {
				t.Errorf("done at probe %d, want %d", done, tc.wantDone)
			}
		})
	}
}
