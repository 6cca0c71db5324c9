package manager

import (
	"testing"
	"time"
)

func TestBackOff(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBackOff(10*time.Second, 40*time.Second, func() time.Time { return now })
	step := func(finished time.Time, wantIn bool, wantLeft time.Duration) {
		t.Helper()
		in, left := b.inBackOff("c", finished)
		if in != wantIn || (in && left != wantLeft) {
			t.Fatalf("at %v, finished %v: inBackOff = %v %v, want %v %v", now.Unix(), finished.Unix(), in, left, wantIn, wantLeft)
		}
		if !in {
			b.next("c", finished)
		}
	}
	// First exit: restart at once; the next exits wait 10, 20, 40, 40 s.
	step(now, false, 0)
	for _, d := range []time.Duration{10, 20, 40, 40} {
		finished := now.Add(time.Second)
		now = finished.Add(time.Second)
		step(finished, true, d*time.Second-time.Second)
		now = finished.Add(d * time.Second)
		step(finished, false, 0)
	}
	// Running longer than 2×max resets it.
	finished := now.Add(81 * time.Second)
	now = finished
	step(finished, false, 0)
	now = finished.Add(time.Second)
	finished = now
	step(finished, true, 10*time.Second)
}
