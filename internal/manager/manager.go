package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/manager/images"
	"github.com/berth-project/berth/internal/manager/lifecycle"
	"github.com/berth-project/berth/internal/manager/podenv"
	"github.com/berth-project/berth/internal/manager/prober"
	"github.com/berth-project/berth/internal/manager/volume"
	corev1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
)

// Options configure a Manager.
type Options struct {
	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	// PodLogsDir holds each pod's log directory, <ns>_<name>_<uid>.
	PodLogsDir string
	// ContainerLogsDir holds the kubelet's legacy symlinks to container
	// logs; "" makes none.
	ContainerLogsDir string
	// StateDir holds pod volumes and termination-message files.
	StateDir string
	// ResolvConf is the host's resolver configuration.
	ResolvConf string
	Node       podenv.Node
	// Events receives every event; Logs the containers' output, each line
	// prefixed with its container's name.
	Events func(Event)
	Logs   io.Writer
	// PullProgress, if set, is called while an image pulls.
	PullProgress func(image string, elapsed time.Duration)
	Logger       *slog.Logger
	// SyncPeriod is how often the pod is synced without a reason (the
	// kubelet's PLEG relists every second).
	SyncPeriod time.Duration
	// BackOff is the first crash-loop delay, BackOffMax its cap.
	BackOff, BackOffMax time.Duration
	Clock               func() time.Time
}

// Manager runs one pod at a time through a CRI runtime.
type Manager struct {
	opts    Options
	images  *images.Manager
	volumes *volume.Manager
	hooks   *lifecycle.Runner
	probes  *prober.Prober
	backOff *backOff
	// wake makes the loop sync now (a probe result changed).
	wake chan struct{}

	mu sync.Mutex
	// waiting holds why a container is not running (ErrImagePull,
	// CrashLoopBackOff, ...), by name, until it starts.
	waiting map[string]waitingReason
	// probeState holds the latest probe results by container ID.
	probe probeState
	// following are the container IDs whose logs are printed.
	following map[string]bool
	// followers print container logs until followCancel.
	followers    sync.WaitGroup
	followCtx    context.Context
	followCancel context.CancelFunc
	logMu        sync.Mutex
	// pullFor is the container whose image is being ensured: syncs run
	// one at a time, so image events belong to it.
	pullFor string
	// runtime is the runtime's name, for container IDs.
	runtime string
	// warned holds the warnings already shown, per object.
	warned map[string]bool
}

type waitingReason struct{ Reason, Message string }

// New checks opts and builds a Manager.
func New(opts Options) (*Manager, error) {
	if opts.Runtime == nil || opts.Images == nil {
		return nil, errors.New("manager: a runtime and an image service are required")
	}
	if opts.PodLogsDir == "" || opts.StateDir == "" {
		return nil, errors.New("manager: PodLogsDir and StateDir are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	if opts.SyncPeriod <= 0 {
		opts.SyncPeriod = time.Second
	}
	if opts.BackOff <= 0 {
		opts.BackOff = 10 * time.Second
	}
	if opts.BackOffMax <= 0 {
		opts.BackOffMax = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.ResolvConf == "" {
		opts.ResolvConf = "/etc/resolv.conf"
	}
	m := &Manager{
		opts:      opts,
		backOff:   newBackOff(opts.BackOff, opts.BackOffMax, opts.Clock),
		wake:      make(chan struct{}, 1),
		waiting:   map[string]waitingReason{},
		following: map[string]bool{},
		warned:    map[string]bool{},
	}
	m.probe.init()
	var err error
	if m.images, err = images.New(images.Options{
		Service:  opts.Images,
		Events:   m.imageEvent,
		Progress: opts.PullProgress,
		Clock:    opts.Clock,
	}); err != nil {
		return nil, err
	}
	if m.volumes, err = volume.New(volume.Options{Root: filepath.Join(opts.StateDir, "pods"), Logger: opts.Logger}); err != nil {
		return nil, err
	}
	if m.hooks, err = lifecycle.New(lifecycle.Options{Runtime: opts.Runtime, Event: m.hookEvent}); err != nil {
		return nil, err
	}
	if m.probes, err = prober.New(prober.Options{Runtime: opts.Runtime, Report: m.probeReport, Event: m.probeEvent}); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) configOptions() configOptions {
	return configOptions{
		PodLogsDir:     m.opts.PodLogsDir,
		HostResolvConf: m.opts.ResolvConf,
		TerminationDir: filepath.Join(m.opts.StateDir, "pods"),
		Node:           m.opts.Node,
	}
}

// poke makes the loop sync without waiting for the period.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) setWaiting(name, reason, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waiting[name] = waitingReason{reason, msg}
}

func (m *Manager) clearWaiting(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.waiting, name)
}

func (m *Manager) waitingOf(name string) (waitingReason, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.waiting[name]
	return w, ok
}

// errPodOver ends Run: the pod reached a terminal phase.
var errPodOver = fmt.Errorf("pod is over")

// imageEvent shows an image event against the container it is for.
func (m *Manager) imageEvent(e images.Event) {
	m.mu.Lock()
	obj := m.pullFor
	m.mu.Unlock()
	m.event(obj, e.Type, e.Reason, "%s", e.Message)
}

// hookEvent shows the hook runner's own warnings (an HTTPS hook answered
// in plain HTTP).
func (m *Manager) hookEvent(pod *corev1.Pod, reason, message string) {
	m.event(podObject(pod), "Warning", reason, "%s", message)
}
