package imagevolume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Remove removes the tree of image imageID unless it is pinned or inUse
// says a container binds it (inUse runs with the tree locked, so no
// Acquire of the image can slip in between). It reports whether a tree was
// removed.
func (s *Store) Remove(ctx context.Context, imageID string, inUse func(ctx context.Context) (bool, error)) (bool, error) {
	h, err := idHex(imageID)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	e := s.entry(imageID)
	for e.op != nil {
		op := e.op
		s.mu.Unlock()
		if err := wait(ctx, op); err != nil {
			return false, err
		}
		s.mu.Lock()
	}
	if e.pins > 0 {
		s.mu.Unlock()
		return false, nil
	}
	op := &operation{done: make(chan struct{})}
	e.op = op
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		e.op = nil
		s.mu.Unlock()
		close(op.done)
	}()

	dir := filepath.Join(s.dir, h)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if inUse != nil {
		used, err := inUse(ctx)
		if err != nil || used {
			return false, err
		}
	}
	// Renamed away first, so a tree half removed is never taken for a
	// whole one; what RemoveAll leaves, Reconcile removes.
	trash := filepath.Join(s.dir, ".trash-"+h[:12]+"-"+randomHex(4))
	if err := os.Rename(dir, trash); err != nil {
		return false, fmt.Errorf("remove image volume of %s: %w", imageID, err)
	}
	if err := removeTree(trash); err != nil {
		return true, fmt.Errorf("remove image volume of %s: %w", imageID, err)
	}
	return true, nil
}

// List returns the IDs of the images that have a tree.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list image volumes: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if id := "sha256:" + e.Name(); imageIDPattern.MatchString(id) && e.IsDir() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Reconcile removes what a crash left: helper containers and trees half
// made or half removed. Call it at start, before serving: it cannot tell a
// crash's leftovers from an extraction at work.
func (s *Store) Reconcile(ctx context.Context) error {
	var errs []error
	f := client.Filters{}
	f.Add("label", naming.LabelManaged+"=true", naming.LabelType+"="+naming.TypeImageVolume)
	res, err := s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list image volume helper containers: %w", err))
	}
	for _, c := range res.Items {
		_, err := s.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove image volume helper container %s: %w", c.ID, err))
		}
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("list image volumes: %w", err))
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".trash-") {
			if err := removeTree(filepath.Join(s.dir, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("remove half-made image volume: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeTree removes dir and everything in it, also the directories an
// image made read-only (which stop RemoveAll when berth is not root).
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
