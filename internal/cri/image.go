package cri

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists Docker's images, optionally only the one a filter names.
func (s *Service) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	opts := client.ImageListOptions{}
	ref := req.GetFilter().GetImage().GetImage()
	if ref != "" {
		if !isRepository(ref) {
			// A tag, a digest or an ID names one image, reported with
			// all its tags.
			img, err := s.imageStatus(ctx, ref)
			if err != nil || img == nil {
				return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{}}, err
			}
			return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{img}}, nil
		}
		// A repository lists each of its tags, as `crictl images REPO`
		// expects: Docker's "reference" filter does that.
		opts.Filters = client.Filters{}
		opts.Filters.Add("reference", ref)
	}
	res, err := s.docker.ImageList(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if ref != "" && len(res.Items) == 0 {
		// A short image ID reads as a repository name too.
		img, err := s.imageStatus(ctx, ref)
		if err != nil || img == nil {
			return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{}}, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{img}}, nil
	}
	out := make([]*runtimeapi.Image, 0, len(res.Items))
	for _, it := range res.Items {
		out = append(out, criImage(it.ID, it.RepoTags, it.RepoDigests, it.Size, "", s.isPauseImage(it.ID, it.RepoTags, it.RepoDigests)))
	}
	// ImageList carries no config, so the user is not known here; the
	// kubelet asks ImageStatus when it needs it.
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// ImageStatus reports one image; an unknown image is an empty answer, not
// an error, as the CRI says.
func (s *Service) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: empty: %w", errdefs.ErrInvalidArgument)
	}
	img, err := s.imageStatus(ctx, ref)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: img}
	if img != nil && req.GetVerbose() {
		resp.Info = map[string]string{"info": fmt.Sprintf(`{"id":%q}`, img.Id)}
	}
	return resp, nil
}

func (s *Service) imageStatus(ctx context.Context, ref string) (*runtimeapi.Image, error) {
	res, err := s.docker.ImageInspect(ctx, ref)
	if errdefs.IsNotFound(err) || beingRemoved(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect image %q: %w", ref, err)
	}
	user := ""
	if res.Config != nil {
		user = res.Config.User
	}
	return criImage(res.ID, res.RepoTags, res.RepoDigests, res.Size, user, s.isPauseImage(res.ID, res.RepoTags, res.RepoDigests)), nil
}

func criImage(id string, tags, digests []string, size int64, user string, pinned bool) *runtimeapi.Image {
	img := &runtimeapi.Image{
		Id:          id,
		RepoTags:    nonNilStrings(tags),
		RepoDigests: nonNilStrings(digests),
		Size:        uint64(max(size, 0)),
		Spec:        &runtimeapi.ImageSpec{Image: id},
		Pinned:      pinned,
	}
	// The user is "name", "uid", "name:group" or "uid:gid": the kubelet
	// needs a numeric uid to enforce runAsNonRoot.
	u, _, _ := strings.Cut(user, ":")
	if uid, err := strconv.ParseInt(u, 10, 64); err == nil {
		img.Uid = &runtimeapi.Int64Value{Value: uid}
	} else {
		img.Username = u
	}
	return img
}

// isPauseImage reports whether an image is the pause image, which is
// pinned so the kubelet's image GC never removes it: berth builds it
// locally and cannot pull it back. References are compared normalized,
// since Docker may spell the flag's tag differently
// (docker.io/library/..., an implied :latest), and without asking Docker:
// the kubelet polls the image RPCs.
func (s *Service) isPauseImage(id string, tags, digests []string) bool {
	if id == s.pauseImage {
		return true
	}
	want := normalizeRef(s.pauseImage)
	if want == "" {
		return false
	}
	for _, r := range append(slices.Clone(tags), digests...) {
		if normalizeRef(r) == want {
			return true
		}
	}
	return false
}

// normalizeRef spells a reference fully (docker.io/library/x:latest), or
// returns "" for what is not one.
func normalizeRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.TagNameOnly(named).String()
}

func nonNilStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// RemoveImage removes an image with all its tags. Removing an unknown image
// succeeds, and so does the loser of two concurrent removes.
func (s *Service) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: empty: %w", errdefs.ErrInvalidArgument)
	}
	res, err := s.docker.ImageInspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		s.pruneImageVolumesAfterRemove(ctx)
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect image %q: %w", ref, err)
	}
	_, err = s.docker.ImageRemove(ctx, res.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	wait := removeWait
	switch {
	case err == nil, errdefs.IsNotFound(err), beingRemoved(err):
	case errdefs.IsConflict(err):
		// In use by a container, or another RemoveImage at work: only
		// the latter makes it vanish soon.
		wait = conflictWait
	default:
		return nil, fmt.Errorf("remove image %s: %w", res.ID, err)
	}
	// Another RemoveImage of the same image may still be at work: the
	// image is gone only when Docker no longer knows it, and the CRI
	// promises that when RemoveImage returns.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if werr := s.waitImageGone(wctx, res.ID); werr != nil {
		if err != nil {
			return nil, fmt.Errorf("remove image %s: %w", res.ID, err)
		}
		return nil, werr
	}
	s.pruneImageVolumesAfterRemove(ctx)
	return &runtimeapi.RemoveImageResponse{}, nil
}

// pruneImageVolumesAfterRemove removes the image volumes of removed
// images (this one, and any an earlier removal had to keep). The image is
// gone either way, so a failure here does not fail RemoveImage; what is
// left is removed by a later RemoveImage or at the next start.
func (s *Service) pruneImageVolumesAfterRemove(ctx context.Context) {
	if err := s.pruneImageVolumes(ctx); err != nil {
		s.log.WarnContext(ctx, "image volumes of removed images left for later", "error", err)
	}
}

// How long RemoveImage waits for the image to be gone from Docker.
const (
	removeWait   = 30 * time.Second
	conflictWait = time.Second
)

// waitImageGone polls until Docker no longer knows image id.
func (s *Service) waitImageGone(ctx context.Context, id string) error {
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		_, err := s.docker.ImageInspect(ctx, id)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil && !beingRemoved(err) {
			return fmt.Errorf("remove image %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove image %s: still there: %w", id, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// beingRemoved reports Docker's answers about an image another removal is
// taking apart: its layers or its ID already gone, reported as errors of
// no particular kind.
func beingRemoved(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "layer does not exist") || strings.Contains(msg, "unrecognized image ID")
}

// ImageFsInfo reports the filesystem Docker keeps images on.
func (s *Service) ImageFsInfo(ctx context.Context, _ *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	info, err := s.docker.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker info: %w", err)
	}
	list, err := s.docker.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var used uint64
	for _, it := range list.Items {
		used += uint64(max(it.Size, 0))
	}
	mount := info.Info.DockerRootDir
	if info.Info.Driver != "" {
		mount += "/" + info.Info.Driver
	}
	fs := &runtimeapi.FilesystemUsage{
		Timestamp: s.now().UnixNano(),
		FsId:      &runtimeapi.FilesystemIdentifier{Mountpoint: mount},
		UsedBytes: &runtimeapi.UInt64Value{Value: used},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}

// isRepository reports whether ref names a repository without a tag or
// digest.
func isRepository(ref string) bool {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	_, tagged := named.(reference.Tagged)
	_, digested := named.(reference.Digested)
	return !tagged && !digested
}
