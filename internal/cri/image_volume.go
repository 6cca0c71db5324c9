package cri

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/imagevolume"
	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image volumes are binds of a tree package imagevolume extracts once per
// image ID. The tree's life: it is made by the first CreateContainer that
// mounts the image and kept while the image is in Docker (the next
// container reuses it). It is removed once the image is gone from Docker
// and no container (running or not) binds it, checked when RemoveImage
// runs and at start; a tree still bound when its image is removed waits
// for the next such check. A create pins the trees it binds until its
// container is in Docker, so a removal never races it.

// imageVolumeSet is what one CreateContainer's image volumes hold: the
// trees pinned until the container exists, and what its labels record.
type imageVolumeSet struct {
	s        *Service
	ctx      context.Context
	vols     []naming.ImageVolume
	releases []func()
}

func (s *Service) newImageVolumeSet(ctx context.Context) *imageVolumeSet {
	return &imageVolumeSet{s: s, ctx: ctx}
}

// resolver is translate's ContainerParams.ImageVolume, nil when berth
// serves no image volumes.
func (v *imageVolumeSet) resolver() func(string, *runtimeapi.Mount) (string, error) {
	if v.s.imageVolumes == nil {
		return nil
	}
	return v.resolve
}

// resolve makes the tree of the mount's image and returns the host path
// to bind.
func (v *imageVolumeSet) resolve(field string, m *runtimeapi.Mount) (string, error) {
	ref := m.GetImage().GetImage()
	img, err := v.s.docker.ImageInspect(v.ctx, ref)
	if err != nil {
		// The kubelet pulls an image volume's image before the create.
		return "", fmt.Errorf("%s.image: image %q: %w", field, ref, err)
	}
	rootfs, release, err := v.s.imageVolumes.Acquire(v.ctx, img.ID)
	if err != nil {
		return "", fmt.Errorf("%s.image: %w", field, err)
	}
	v.releases = append(v.releases, release)
	host, err := imagevolume.Resolve(rootfs, m.GetImageSubPath())
	if se := (*imagevolume.SubPathError)(nil); errors.As(err, &se) {
		return "", fmt.Errorf("%s.image_sub_path: %w (image %q): %w", field, err, ref, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return "", fmt.Errorf("%s.image_sub_path: %w", field, err)
	}
	v.vols = append(v.vols, naming.ImageVolume{
		ContainerPath:      m.GetContainerPath(),
		Image:              ref,
		UserSpecifiedImage: m.GetImage().GetUserSpecifiedImage(),
		ImageRef:           img.ID,
		SubPath:            m.GetImageSubPath(),
	})
	return host, nil
}

// release unpins the trees: call it once the container is in Docker, or
// will not be.
func (v *imageVolumeSet) release() {
	for _, r := range v.releases {
		r()
	}
}

// imageVolumeInUse reports whether a container of berth's binds the image
// volume of imageID.
func (s *Service) imageVolumeInUse(ctx context.Context, imageID string) (bool, error) {
	items, err := s.list(ctx, listQuery{typ: naming.TypeContainer})
	if err != nil {
		return false, err
	}
	for _, it := range items {
		vols, err := it.labels.ImageVolumes()
		if err != nil {
			// Unreadable: it may bind the tree.
			return true, fmt.Errorf("container %s: %w", it.ID, err)
		}
		for _, vol := range vols {
			if vol.ImageRef == imageID {
				return true, nil
			}
		}
	}
	return false, nil
}

// pruneImageVolumes removes the trees whose image is gone from Docker and
// that no container binds.
func (s *Service) pruneImageVolumes(ctx context.Context) error {
	if s.imageVolumes == nil {
		return nil
	}
	ids, err := s.imageVolumes.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		_, err := s.docker.ImageInspect(ctx, id)
		if err == nil {
			continue
		}
		if !errdefs.IsNotFound(err) && !beingRemoved(err) {
			errs = append(errs, fmt.Errorf("image volume of %s: inspect image: %w", id, err))
			continue
		}
		removed, err := s.imageVolumes.Remove(ctx, id, func(ctx context.Context) (bool, error) {
			return s.imageVolumeInUse(ctx, id)
		})
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			s.log.InfoContext(ctx, "removed the image volume of a removed image", "image", id)
		}
	}
	return errors.Join(errs...)
}

// reconcileImageVolumes removes what a crash left of image volumes, and the
// trees of images removed while berth was down.
func (s *Service) reconcileImageVolumes(ctx context.Context) error {
	if s.imageVolumes == nil {
		return nil
	}
	return errors.Join(s.imageVolumes.Reconcile(ctx), s.pruneImageVolumes(ctx))
}
