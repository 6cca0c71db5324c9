// Package imagevolume gives image volumes (CRI Mount.image) to Docker
// Engine, which cannot mount an image itself before API 1.48 (Engine 28):
// each image's root filesystem is materialized once as a directory tree
// under berth's root, which containers then bind read-only.
//
// A tree is made by creating a container from the image (never started),
// exporting it and extracting the archive (Extract, which trusts nothing in
// it), then removing that helper container; it is built under a temporary
// name and renamed into place, so a tree that exists is complete. The tree
// lives as long as the image: the caller removes it (Remove) when the image
// is removed from Docker, unless a container still binds it, and sweeps the
// rest at start. Docker is not asked to keep the image for the tree's sake:
// the tree is a copy, so removing the image never breaks a running
// container.
package imagevolume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Docker is what the store asks of Docker; *client.Client satisfies it.
type Docker interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerExport(ctx context.Context, containerID string, options client.ContainerExportOptions) (client.ContainerExportResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	CopyFromContainer(ctx context.Context, containerID string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
}

var _ Docker = (*client.Client)(nil)

// Options configure a Store.
type Options struct {
	Docker Docker
	// Dir holds the trees, one per image: <Dir>/<hex of the image ID>/rootfs.
	Dir    string
	Logger *slog.Logger
}

// Store makes and removes the trees of image volumes. It is safe for
// concurrent use.
type Store struct {
	docker Docker
	dir    string
	log    *slog.Logger
	// chown keeps the archive's owners, which needs root (berth serve
	// runs as root; tests may not).
	chown bool

	mu sync.Mutex
	// images holds an entry per image ever asked for: a handful on a
	// node, so entries are never dropped.
	images map[string]*entry
}

// entry is one image's state; Store.mu guards it.
type entry struct {
	// pins counts callers between Acquire and release: a container being
	// created that binds the tree, though Docker does not list it yet.
	pins int
	// op is the extraction or removal at work on the tree, if any.
	op *operation
}

type operation struct {
	done chan struct{}
	err  error
}

// extractTimeout bounds one extraction. It runs on a context of its own,
// so a caller that gives up (the kubelet retries CreateContainer) finds it
// finished or still at work, rather than starting over each time.
const extractTimeout = 30 * time.Minute

// cleanupTimeout bounds removing a helper container after its caller
// has gone.
const cleanupTimeout = time.Minute

// New returns a Store on opts.Dir, which it creates.
func New(opts Options) (*Store, error) {
	if opts.Docker == nil || opts.Dir == "" {
		return nil, errors.New("imagevolume: Docker and Dir are required")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("image volume dir: %w", err)
	}
	s := &Store{docker: opts.Docker, dir: opts.Dir, log: opts.Logger, chown: os.Geteuid() == 0, images: map[string]*entry{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

var imageIDPattern = regexp.MustCompile(`^sha256:([0-9a-f]{64})$`)

// idHex is the hex part of an image ID, which names its directory.
func idHex(imageID string) (string, error) {
	m := imageIDPattern.FindStringSubmatch(imageID)
	if m == nil {
		return "", fmt.Errorf("image volume: %q is not an image ID: %w", imageID, errdefs.ErrInvalidArgument)
	}
	return m[1], nil
}

func (s *Store) entry(imageID string) *entry {
	e := s.images[imageID]
	if e == nil {
		e = &entry{}
		s.images[imageID] = e
	}
	return e
}

// Acquire returns the root filesystem of image imageID (an image ID,
// "sha256:..."), making it first if need be; concurrent callers for one
// image share one extraction. The tree is pinned until release is called:
// call it once the container that binds it exists in Docker (or will not).
func (s *Store) Acquire(ctx context.Context, imageID string) (rootfs string, release func(), err error) {
	h, err := idHex(imageID)
	if err != nil {
		return "", nil, err
	}
	rootfs = filepath.Join(s.dir, h, "rootfs")
	for {
		s.mu.Lock()
		e := s.entry(imageID)
		if op := e.op; op != nil {
			s.mu.Unlock()
			if err := wait(ctx, op); err != nil {
				return "", nil, err
			}
			if op.err != nil {
				// The extraction this caller joined failed: its
				// callers share the error as they would the tree.
				return "", nil, op.err
			}
			continue
		}
		if _, err := os.Lstat(rootfs); err == nil {
			e.pins++
			s.mu.Unlock()
			return rootfs, sync.OnceFunc(func() {
				s.mu.Lock()
				e.pins--
				s.mu.Unlock()
			}), nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			s.mu.Unlock()
			return "", nil, fmt.Errorf("image volume of %s: %w", imageID, err)
		}
		op := &operation{done: make(chan struct{})}
		e.op = op
		s.mu.Unlock()
		go func() {
			xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), extractTimeout)
			op.err = s.materialize(xctx, imageID, h)
			cancel()
			s.mu.Lock()
			e.op = nil
			s.mu.Unlock()
			close(op.done)
		}()
		if err := wait(ctx, op); err != nil {
			return "", nil, err
		}
		if op.err != nil {
			return "", nil, op.err
		}
		// The loop pins the tree, or finds it removed meanwhile and
		// makes it again.
	}
}

// wait waits for op to end, or for ctx; it reports ctx's error only.
func wait(ctx context.Context, op *operation) error {
	select {
	case <-op.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// materialize makes <dir>/<h>/rootfs from image imageID.
func (s *Store) materialize(ctx context.Context, imageID, h string) (retErr error) {
	tmp, err := os.MkdirTemp(s.dir, ".tmp-"+h[:12]+"-")
	if err != nil {
		return fmt.Errorf("image volume of %s: %w", imageID, err)
	}
	defer func() {
		if retErr != nil {
			removeTree(tmp)
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
		return fmt.Errorf("image volume of %s: %w", imageID, err)
	}
	id, err := s.createHelper(ctx, imageID, h)
	if err != nil {
		return err
	}
	defer s.removeHelper(ctx, id, imageID)
	rc, err := s.docker.ContainerExport(ctx, id, client.ContainerExportOptions{})
	if err != nil {
		return fmt.Errorf("export image %s: %w", imageID, err)
	}
	defer rc.Close()
	if err := Extract(ctx, rc, filepath.Join(tmp, "rootfs"), ExtractOptions{Chown: s.chown}); err != nil {
		return fmt.Errorf("image volume of %s: %w", imageID, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, h)); err != nil {
		return fmt.Errorf("image volume of %s: %w", imageID, err)
	}
	return nil
}

// createHelper creates the container whose file system is exported. It is
// never started: its entrypoint need not exist, and it has no network.
func (s *Store) createHelper(ctx context.Context, imageID, h string) (string, error) {
	name := "berth-image-volume-" + h[:12] + "-" + randomHex(4)
	res, err := s.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:           imageID,
			Entrypoint:      []string{"/.berth-image-volume-never-started"},
			Labels:          naming.ImageVolumeHelperLabels(imageID),
			NetworkDisabled: true,
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		if !errdefs.IsNotFound(err) && !errdefs.IsInvalidArgument(err) {
			// Docker may have made it though the call failed.
			s.removeHelper(ctx, name, imageID)
		}
		return "", fmt.Errorf("image volume of %s: create helper container: %w", imageID, err)
	}
	return res.ID, nil
}

// removeHelper removes a helper container even when ctx has ended; what
// it cannot remove, Reconcile removes at the next start.
func (s *Store) removeHelper(ctx context.Context, id, imageID string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := s.docker.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !errdefs.IsNotFound(err) {
		s.log.WarnContext(ctx, "image volume: helper container left until the next start", "container", id, "image", imageID, "error", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
