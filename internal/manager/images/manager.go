// Package images provides containers' images the way the kubelet's image
// manager does, over the CRI ImageManagerService: pull policy (defaulted
// as the API server would), pull secrets, one pull per image at a time,
// back-off after failures, and the kubelet's events and waiting reasons.
package images

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
)

// Options configure a Manager.
type Options struct {
	Service internalapi.ImageManagerService
	// Events receives what the kubelet would record, worded as the
	// kubelet words it. It may be called from several goroutines at once
	// (one per concurrent EnsureImageExists).
	Events func(e Event)
	// Progress, if set, is called about every second while a pull runs,
	// with the time since this caller started waiting, so a TTY can show
	// a progress line; the CRI gives no byte counts.
	Progress func(image string, elapsed time.Duration)
	BackOff  BackOffConfig
	// Clock is for tests; default time.Now.
	Clock func() time.Time
}

// Event is one kubelet event about a container's image.
type Event struct {
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string // EventPulling, EventPulled, ...
	Message string
}

// Manager provides images. It is safe for concurrent use.
type Manager struct {
	svc      internalapi.ImageManagerService
	events   func(Event)
	progress func(string, time.Duration)
	now      func() time.Time
	backOff  *backOff
	flights  *flights
	// progressEvery is how often Progress is called; tests shorten it.
	progressEvery time.Duration
}

// New returns a Manager over opts.Service.
func New(opts Options) (*Manager, error) {
	if opts.Service == nil {
		return nil, errors.New("image manager: no image service")
	}
	cfg, err := opts.BackOff.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		svc:           opts.Service,
		events:        opts.Events,
		progress:      opts.Progress,
		now:           opts.Clock,
		backOff:       newBackOff(cfg),
		flights:       newFlights(),
		progressEvery: time.Second,
	}
	if m.events == nil {
		m.events = func(Event) {}
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

func (m *Manager) normal(reason, msg string) {
	m.events(Event{Type: corev1.EventTypeNormal, Reason: reason, Message: msg})
}

func (m *Manager) warning(reason, msg string) {
	m.events(Event{Type: corev1.EventTypeWarning, Reason: reason, Message: msg})
}
