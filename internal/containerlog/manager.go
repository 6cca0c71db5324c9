// Package containerlog writes each container's stdout and stderr to the CRI
// log file the kubelet reads.
//
// Docker's own log (json-file) is the durable source: a copier per
// container follows it through the Engine API (ContainerLogs with Follow and
// Timestamps) and appends one CRI record per Docker message, with Docker's
// timestamp. Because Docker keeps the log, the copier can stop at any time
// (a berth restart, a dockerd restart) and resume where its file ends: the
// file itself is the position, and a small position file in berth's state
// directory covers the moment just after the kubelet rotated it.
package containerlog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Source is the part of the Engine API the copiers use; *client.Client
// satisfies it.
type Source interface {
	ContainerLogs(ctx context.Context, containerID string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

var _ Source = (*client.Client)(nil)

// Options configure a Manager.
type Options struct {
	Docker Source
	// StateDir is berth's own directory for per-container positions; it is
	// created with mode 0700.
	StateDir string
	Logger   *slog.Logger
}

// Manager runs one copier per container.
type Manager struct {
	docker   Source
	stateDir string
	log      *slog.Logger

	ctx    context.Context // parent of every copier's context
	cancel context.CancelFunc

	mu      sync.Mutex
	copiers map[string]*copier
	closed  bool
}

// New returns a Manager and creates opts.StateDir.
func New(opts Options) (*Manager, error) {
	if opts.Docker == nil {
		return nil, fmt.Errorf("containerlog: Docker is required")
	}
	if !filepath.IsAbs(opts.StateDir) {
		return nil, fmt.Errorf("containerlog: StateDir %q must be an absolute path", opts.StateDir)
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("containerlog: state directory: %w", err)
	}
	if err := os.Chmod(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("containerlog: state directory: %w", err)
	}
	m := &Manager{
		docker:   opts.Docker,
		stateDir: opts.StateDir,
		log:      opts.Logger,
		copiers:  map[string]*copier{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Prepare creates the log file (0640) and its missing parent directories
// (0755) so that it exists when the container starts. path must be absolute
// and clean; a symlink anywhere in it is refused (errdefs.ErrInvalidArgument).
func (m *Manager) Prepare(path string) error {
	f, err := openLog(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// Start starts copying the container's log to path, resuming after the last
// record path holds. Starting a container whose copier runs is a no-op.
// The copier runs until the container's log ends (it exited), Stop or
// Close; ctx only bounds Start itself.
func (m *Manager) Start(ctx context.Context, containerID, path string) error {
	if err := checkID(containerID); err != nil {
		return err
	}
	if err := checkPath(path); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("start log of container %s: log manager closed: %w", containerID, errdefs.ErrUnavailable)
	}
	if c := m.copiers[containerID]; c != nil {
		m.mu.Unlock()
		select {
		case <-c.ready:
			return c.startErr
		case <-ctx.Done():
			return fmt.Errorf("start log of container %s: %w", containerID, ctx.Err())
		}
	}
	c := newCopier(m, containerID, path)
	m.copiers[containerID] = c
	m.mu.Unlock()

	if err := c.open(); err != nil {
		c.startErr = fmt.Errorf("start log of container %s: %w", containerID, err)
		m.remove(c)
		close(c.ready)
		close(c.done)
		return c.startErr
	}
	close(c.ready)
	go c.run()
	return nil
}

// Reopen is ReopenContainerLog: after the kubelet renamed the file, the
// copier flushes, saves its position, closes the file and opens path anew.
// It returns once the new file is open. A container without a running
// copier is errdefs.ErrFailedPrecondition.
func (m *Manager) Reopen(ctx context.Context, containerID string) error {
	c := m.copier(containerID)
	if c != nil {
		select {
		case <-c.ready:
		case <-ctx.Done():
			return fmt.Errorf("reopen log of container %s: %w", containerID, ctx.Err())
		}
	}
	if c == nil || c.startErr != nil {
		return fmt.Errorf("reopen log of container %s: container is not running: %w", containerID, errdefs.ErrFailedPrecondition)
	}
	return c.reopen()
}

// Wait waits until the container's copier, if any, has ended: after the
// container exited, everything it wrote is in the file once Wait returns.
func (m *Manager) Wait(ctx context.Context, containerID string) error {
	c := m.copier(containerID)
	if c == nil {
		return nil
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops the container's copier, if any, and waits until its file is
// closed.
func (m *Manager) Stop(containerID string) {
	if c := m.copier(containerID); c != nil {
		<-c.ready
		c.cancel()
		<-c.done
	}
}

// Forget stops the container's copier and removes its state (on
// RemoveContainer).
func (m *Manager) Forget(containerID string) error {
	if err := checkID(containerID); err != nil {
		return err
	}
	m.Stop(containerID)
	if err := os.RemoveAll(filepath.Join(m.stateDir, containerID)); err != nil {
		return fmt.Errorf("forget log of container %s: %w", containerID, err)
	}
	return nil
}

// Close stops all copiers and waits for them; Start fails afterwards.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*copier, 0, len(m.copiers))
	for _, c := range m.copiers {
		all = append(all, c)
	}
	m.mu.Unlock()
	m.cancel()
	for _, c := range all {
		<-c.ready
		<-c.done
	}
}

func (m *Manager) copier(containerID string) *copier {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copiers[containerID]
}

// remove forgets c unless a newer copier took its place.
func (m *Manager) remove(c *copier) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.copiers[c.id] == c {
		delete(m.copiers, c.id)
	}
}

// checkID keeps container IDs usable as a directory name below StateDir.
func checkID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
