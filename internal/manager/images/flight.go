package images

import (
	"context"
	"sync"
	"time"
)

// pullResult is the outcome of one pull of one image.
type pullResult struct {
	imageRef string
	size     uint64
	// duration is the time the pull itself took, without waiting.
	duration time.Duration
	err      error
}

// flight is one pull in progress, shared by every caller that wants the
// same image meanwhile.
type flight struct {
	done    chan struct{} // closed once res is set
	res     pullResult
	waiters int
	cancel  context.CancelFunc
}

// flights runs at most one pull per image. Unlike singleflight, the pull
// is cancelled only when every caller waiting for it has gone, not when
// the first one does.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

func newFlights() *flights { return &flights{m: map[string]*flight{}} }

// join returns the pull of key in progress, starting pull if there is
// none. The caller must call leave once it stops waiting.
func (f *flights) join(ctx context.Context, key string, pull func(context.Context) pullResult) (fl *flight, leave func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[key]
	if !ok {
		// The pull keeps the first caller's values (logger, request id)
		// but not its cancellation: other callers may still wait.
		pullCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		fl = &flight{done: make(chan struct{}), cancel: cancel}
		f.m[key] = fl
		go func() {
			res := pull(pullCtx)
			f.mu.Lock()
			f.forget(key, fl)
			f.mu.Unlock()
			cancel()
			fl.res = res
			close(fl.done)
		}()
	}
	fl.waiters++
	var once sync.Once
	return fl, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			fl.waiters--
			if fl.waiters == 0 {
				// Nobody wants this pull any more; a caller arriving
				// while it winds down starts a fresh one rather than
				// inherit the cancellation.
				f.forget(key, fl)
				fl.cancel()
			}
		})
	}
}

// forget removes fl if it is still the flight of key. Callers hold mu.
func (f *flights) forget(key string, fl *flight) {
	if f.m[key] == fl {
		delete(f.m, key)
	}
}

// waiting is how many callers wait for the pull of key; for tests.
func (f *flights) waiting(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.m[key]; ok {
		return fl.waiters
	}
	return 0
}
