package manager

import (
	"sync"
	"time"
)

// backOff is the kubelet's crash-loop back-off per container: the first
// restart is immediate, then each exit within the window waits, doubling
// from initial to max; an entry not touched for 2×max (a container that
// ran ten minutes) starts over.
type backOff struct {
	initial, max time.Duration
	now          func() time.Time

	mu      sync.Mutex
	entries map[string]*backOffEntry
}

type backOffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

func newBackOff(initial, max time.Duration, now func() time.Time) *backOff {
	return &backOff{initial: initial, max: max, now: now, entries: map[string]*backOffEntry{}}
}

// inBackOff reports whether a container that finished at finishedAt must
// still wait, and how long.
func (b *backOff) inBackOff(key string, finishedAt time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(finishedAt, e) {
		return false, 0
	}
	left := e.delay - b.now().Sub(finishedAt)
	return left > 0, left
}

// next records a restart of a container that finished at finishedAt.
func (b *backOff) next(key string, finishedAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(finishedAt, e) {
		b.entries[key] = &backOffEntry{delay: b.initial, lastUpdate: finishedAt}
		return
	}
	e.delay = min(2*e.delay, b.max)
	e.lastUpdate = finishedAt
}

func (b *backOff) expired(at time.Time, e *backOffEntry) bool {
	return at.Sub(e.lastUpdate) > 2*b.max
}
