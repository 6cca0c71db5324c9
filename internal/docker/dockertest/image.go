package dockertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is an image in the fake daemon.
type Image struct {
	// ID is "sha256:" and 64 hex digits (see ImageID); AddImage derives
	// one from the tags and digests when it is empty.
	ID          string
	RepoTags    []string // "busybox:1.37", as Docker reports them
	RepoDigests []string // "busybox@sha256:..."
	Size        int64
	// User is the image config's USER: "", "name", "uid", "uid:gid" ...
	User string
	// Labels are the image's LABELs; Docker merges them into the labels of
	// every container created from the image, under the container's own.
	Labels map[string]string
}

// ImageID returns a valid image ID derived from seed, so tests can name
// images without writing 64 hex digits.
func ImageID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(sum[:])
}

var validImageID = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// AddImage stores img as if it had been pulled or built and returns it
// with its ID set. A tag img carries moves to it from any other image, as
// Docker moves a tag. An ID that is not "sha256:" and 64 hex digits panics:
// it is a mistake in the test.
func (f *Fake) AddImage(img Image) Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addImage(img)
}

func (f *Fake) addImage(img Image) Image {
	img = cloneImage(img)
	if img.ID == "" {
		img.ID = ImageID(strings.Join(append(slices.Clone(img.RepoTags), img.RepoDigests...), "\n"))
	}
	if !validImageID.MatchString(img.ID) {
		panic(fmt.Sprintf("dockertest: image ID %q is not sha256:<64 hex>", img.ID))
	}
	for _, other := range f.images {
		if other.ID != img.ID {
			other.RepoTags = slices.DeleteFunc(other.RepoTags, func(t string) bool { return slices.Contains(img.RepoTags, t) })
		}
	}
	if old, ok := f.images[img.ID]; ok {
		for _, t := range old.RepoTags {
			if !slices.Contains(img.RepoTags, t) {
				img.RepoTags = append(img.RepoTags, t)
			}
		}
	} else {
		f.seq++
		f.imageSeq[img.ID] = f.seq
	}
	f.images[img.ID] = &img
	return cloneImage(img)
}

func cloneImage(img Image) Image {
	img.RepoTags = slices.Clone(img.RepoTags)
	img.RepoDigests = slices.Clone(img.RepoDigests)
	img.Labels = maps.Clone(img.Labels)
	return img
}

// Image returns a copy of the image ref names (see ImageInspect).
func (f *Fake) Image(ref string) (Image, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, _, err := f.resolveImage(ref)
	if err != nil {
		return Image{}, false
	}
	return cloneImage(*img), true
}

// Images returns copies of every image, newest first.
func (f *Fake) Images() []Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Image{}
	for _, img := range f.sortedImages() {
		out = append(out, cloneImage(*img))
	}
	return out
}

func (f *Fake) sortedImages() []*Image {
	out := slices.Collect(maps.Values(f.images))
	slices.SortFunc(out, func(a, b *Image) int { return f.imageSeq[b.ID] - f.imageSeq[a.ID] })
	return out
}

// findImage is resolveImage for callers that only want the image.
func (f *Fake) findImage(ref string) (*Image, error) {
	img, _, err := f.resolveImage(ref)
	return img, err
}

// resolveImage finds an image as Docker does: by full ID (with or without
// "sha256:"), then by reference (normalized, so "busybox" is
// "docker.io/library/busybox:latest"), then by unique ID prefix. tag is
// the RepoTags entry that matched, if a tag did.
func (f *Fake) resolveImage(ref string) (img *Image, tag string, err error) {
	if ref == "" {
		return nil, "", errdefs.ErrInvalidArgument.WithMessage("invalid image reference: value is empty")
	}
	hexID := strings.TrimPrefix(ref, "sha256:")
	if img, ok := f.images["sha256:"+hexID]; ok {
		return img, "", nil
	}
	if want, ok := normalize(ref); ok {
		for _, img := range f.images {
			for _, t := range img.RepoTags {
				if n, ok := normalize(t); ok && n == want {
					return img, t, nil
				}
			}
			for _, d := range img.RepoDigests {
				if n, ok := normalize(d); ok && n == want {
					return img, "", nil
				}
			}
		}
	}
	var match *Image
	if isHex(hexID) {
		for _, img := range f.images {
			if strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), hexID) {
				if match != nil {
					return nil, "", errdefs.ErrInvalidArgument.WithMessage("multiple IDs found with provided prefix: " + ref)
				}
				match = img
			}
		}
	}
	if match == nil {
		return nil, "", errdefs.ErrNotFound.WithMessage("No such image: " + ref)
	}
	return match, "", nil
}

func normalize(ref string) (string, bool) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", false
	}
	return reference.TagNameOnly(named).String(), true
}

func isHex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdef") == ""
}

// ImageList implements docker.Images, newest first. Of the filters only
// "reference" is implemented, as Docker matches it: a repository without a
// tag matches each of its tags; others are errdefs.ErrNotImplemented.
func (f *Fake) ImageList(ctx context.Context, opts client.ImageListOptions) (client.ImageListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ImageList"); err != nil {
		return client.ImageListResult{}, err
	}
	var refs []string
	for term, vals := range opts.Filters {
		if term != "reference" {
			return client.ImageListResult{}, errdefs.ErrNotImplemented.WithMessage("dockertest: image filter " + term + " is not implemented")
		}
		for v := range vals {
			refs = append(refs, v)
		}
	}
	items := []image.Summary{}
	for _, img := range f.sortedImages() {
		if len(refs) > 0 && !matchesReference(img.RepoTags, refs) {
			continue
		}
		items = append(items, image.Summary{
			ID: img.ID, RepoTags: nonNil(img.RepoTags), RepoDigests: nonNil(img.RepoDigests),
			Size: img.Size, Labels: maps.Clone(img.Labels), Containers: -1, SharedSize: -1,
		})
	}
	return client.ImageListResult{Items: items}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// ImageInspect implements docker.Images: imageID is an ID, a reference or
// a unique ID prefix; options are ignored.
func (f *Fake) ImageInspect(ctx context.Context, imageID string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ImageInspect"); err != nil {
		return client.ImageInspectResult{}, err
	}
	img, err := f.findImage(imageID)
	if err != nil {
		return client.ImageInspectResult{}, err
	}
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{
		ID: img.ID, RepoTags: nonNil(img.RepoTags), RepoDigests: nonNil(img.RepoDigests),
		Size: img.Size, Os: "linux", Architecture: "amd64",
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			User: img.User, Labels: maps.Clone(img.Labels),
		}},
	}}, nil
}

// ImageRemove implements docker.Images. Removing by a tag of an image with
// several tags only untags it; otherwise the image goes, unless a
// container uses it: a running one always blocks removal, a stopped one
// without Force (errdefs.ErrConflict, as Docker answers).
func (f *Fake) ImageRemove(ctx context.Context, imageID string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ImageRemove"); err != nil {
		return client.ImageRemoveResult{}, err
	}
	img, tag, err := f.resolveImage(imageID)
	if err != nil {
		return client.ImageRemoveResult{}, err
	}
	if tag != "" && len(img.RepoTags) > 1 {
		img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return t == tag })
		return client.ImageRemoveResult{Items: []image.DeleteResponse{{Untagged: tag}}}, nil
	}
	for _, c := range f.sorted() {
		if c.c.Image != img.ID {
			continue
		}
		if c.c.State.Running || !opts.Force {
			return client.ImageRemoveResult{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf(
				"conflict: unable to delete %s - image is being used by container %s", imageID, c.c.ID[:12]))
		}
	}
	var items []image.DeleteResponse
	for _, t := range img.RepoTags {
		items = append(items, image.DeleteResponse{Untagged: t})
	}
	items = append(items, image.DeleteResponse{Deleted: img.ID})
	delete(f.images, img.ID)
	delete(f.imageSeq, img.ID)
	return client.ImageRemoveResult{Items: items}, nil
}

// matchesReference reports whether one of tags matches one of refs: the
// exact tag, or any tag of a repository named without a tag.
func matchesReference(tags, refs []string) bool {
	for _, ref := range refs {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			continue
		}
		_, tagged := named.(reference.Tagged)
		for _, t := range tags {
			tn, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				continue
			}
			if tagged && reference.TagNameOnly(tn).String() == named.String() {
				return true
			}
			if !tagged && tn.Name() == named.Name() {
				return true
			}
		}
	}
	return false
}
