package imagevolume

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ReadFile returns the file at path in the image's filesystem, at most
// limit bytes, without extracting the image: a never-started helper
// container is made (removed again; Reconcile sweeps one a crash left) and
// the one file copied out of it. A path that is absent or not a regular
// file is fs.ErrNotExist.
func (s *Store) ReadFile(ctx context.Context, imageID, path string, limit int64) ([]byte, error) {
	h, err := idHex(imageID)
	if err != nil {
		return nil, err
	}
	id, err := s.createHelper(ctx, imageID, h)
	if err != nil {
		return nil, err
	}
	defer s.removeHelper(ctx, id, imageID)
	res, err := s.docker.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s in image %s: %w", path, imageID, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("%s in image %s: %w", path, imageID, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%s in image %s: %w", path, imageID, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%s in image %s is not a regular file: %w", path, imageID, fs.ErrNotExist)
	}
	b, err := io.ReadAll(io.LimitReader(tr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s in image %s: %w", path, imageID, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s in image %s: larger than %d bytes: %w", path, imageID, limit, errors.ErrUnsupported)
	}
	return b, nil
}
