package images

import (
	"fmt"
	"sync"
	"time"
)

// BackOffConfig is the wait after a failed pull before the image is pulled
// again: Initial after the first failure, doubling up to Max.
type BackOffConfig struct {
	Initial time.Duration // default 10s, as the kubelet
	Max     time.Duration // default 300s, as the kubelet
}

func (c BackOffConfig) withDefaults() (BackOffConfig, error) {
	if c.Initial == 0 {
		c.Initial = 10 * time.Second
	}
	if c.Max == 0 {
		c.Max = 300 * time.Second
	}
	if c.Initial < 0 || c.Max < c.Initial {
		return c, fmt.Errorf("back-off: need 0 < initial (%v) <= max (%v)", c.Initial, c.Max)
	}
	return c, nil
}

// backOff tracks failed pulls per image, with the semantics of the
// kubelet's flowcontrol.Backoff: a window starts at the failure, doubles
// on each failure that comes while the entry is fresh, and an entry not
// updated for twice the maximum is forgotten. Unlike the kubelet, a
// successful pull forgets the entry at once.
type backOff struct {
	cfg     BackOffConfig
	mu      sync.Mutex
	entries map[string]*backOffEntry
}

type backOffEntry struct {
	window  time.Duration
	updated time.Time
	// err is the failure that opened the window, so that ImagePullBackOff
	// can say what went wrong.
	err error
}

func newBackOff(cfg BackOffConfig) *backOff {
	return &backOff{cfg: cfg, entries: map[string]*backOffEntry{}}
}

// check returns the last pull error when key is inside its window.
func (b *backOff) check(key string, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || now.Sub(e.updated) >= e.window {
		return false, nil
	}
	return true, e.err
}

// failed opens the next window for key.
func (b *backOff) failed(key string, now time.Time, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gc(now)
	e, ok := b.entries[key]
	switch {
	case !ok:
		e = &backOffEntry{window: b.cfg.Initial}
		b.entries[key] = e
	default:
		e.window = min(2*e.window, b.cfg.Max)
	}
	e.updated, e.err = now, err
}

func (b *backOff) succeeded(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// gc forgets entries idle for more than twice the maximum, as
// flowcontrol.Backoff does: a failure long after the last one starts
// again at the initial window. Callers hold mu.
func (b *backOff) gc(now time.Time) {
	for key, e := range b.entries {
		if now.Sub(e.updated) > 2*b.cfg.Max {
			delete(b.entries, key)
		}
	}
}
