// Package cri implements the CRI RuntimeService and ImageService on Docker.
//
// Handlers are thin: validation and the CRI→Docker translation live in
// package translate, identity in package naming, the pod network in package
// network. Handlers return errors wrapped with %w around errdefs kinds; the
// gRPC layer (package criserver) turns them into status codes in one place.
package cri

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/docker"
	"github.com/berth-project/berth/internal/imagevolume"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/berth-project/berth/internal/translate"
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Network is the pod network as the handlers use it.
type Network interface {
	Status() error
	Setup(ctx context.Context, a network.Attachment) (network.Result, error)
	Teardown(ctx context.Context, a network.Attachment) error
}

// Options configure a Service.
type Options struct {
	Docker     docker.API
	Network    Network
	Sandboxes  *sandbox.Store
	Host       translate.Host
	PauseImage string
	// Streaming serves exec, attach and port-forward; nil answers
	// Unimplemented.
	Streaming Streaming
	// Logs writes CRI log files; nil writes none.
	Logs Logs
	// HostResolvConf is read for pods without DNS config.
	HostResolvConf string
	Logger         *slog.Logger
	// ReadCgroups samples a process's cgroups; nil reads the host's.
	ReadCgroups func(pid int) (cgroups.Sample, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ImageVolumes makes image volumes (Mount.image); nil refuses them as
	// not implemented.
	ImageVolumes *imagevolume.Store
	// DockerLog configures each container's Docker log, which the CRI log
	// is copied from (a bounded json-file); empty keeps the daemon's
	// default.
	DockerLog container.LogConfig
}

// Service serves the CRI. It keeps no state that Docker and the sandbox
// checkpoints cannot rebuild.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	docker         docker.API
	network        Network
	sandboxes      *sandbox.Store
	host           translate.Host
	pauseImage     string
	hostResolvConf string
	streaming      Streaming
	logs           Logs
	log            *slog.Logger
	now            func() time.Time
	readCgroups    func(pid int) (cgroups.Sample, error)
	// cgroups reads the counters and /proc files behind the metrics RPCs.
	cgroups cgroups.Reader
	// imageVolumes is nil when image volumes are refused.
	imageVolumes *imagevolume.Store
	dockerLog    container.LogConfig

	locks     keyedMutex
	pulls     pullGroup
	pauseSeen atomic.Bool

	mu      sync.Mutex
	podCIDR string
	fsMount string
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Docker == nil || opts.Network == nil || opts.Sandboxes == nil {
		return nil, fmt.Errorf("cri: Docker, Network and Sandboxes are required")
	}
	if opts.PauseImage == "" {
		return nil, fmt.Errorf("cri: PauseImage is required")
	}
	s := &Service{
		docker:         opts.Docker,
		network:        opts.Network,
		sandboxes:      opts.Sandboxes,
		host:           opts.Host,
		pauseImage:     opts.PauseImage,
		hostResolvConf: opts.HostResolvConf,
		streaming:      opts.Streaming,
		logs:           opts.Logs,
		log:            opts.Logger,
		now:            opts.Now,
		imageVolumes:   opts.ImageVolumes,
		dockerLog:      opts.DockerLog,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cgroups = cgroups.Default
	s.readCgroups = opts.ReadCgroups
	if s.readCgroups == nil {
		s.readCgroups = cgroups.Default.Read
	}
	if s.hostResolvConf == "" {
		s.hostResolvConf = "/etc/resolv.conf"
	}
	return s, nil
}

// keyedMutex serialises work on one object (a sandbox) without a global
// lock: the kubelet may stop and remove one pod while it starts another.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
