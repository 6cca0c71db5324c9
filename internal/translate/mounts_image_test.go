package translate

import (
	"errors"
	"fmt"
	"path"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeVolumes stands in for berth's image volume store: every image's tree
// is /vol/<image>, and "missing" is no sub path of any.
type fakeVolumes struct {
	asked []string // field and image of each call
}

func (f *fakeVolumes) resolve(field string, m *runtimeapi.Mount) (string, error) {
	f.asked = append(f.asked, field+" "+m.GetImage().GetImage())
	switch {
	case m.GetImage().GetImage() == "absent":
		return "", fmt.Errorf("%s.image: image %q not present: %w", field, "absent", errdefs.ErrNotFound)
	case m.GetImageSubPath() == "missing":
		return "", fmt.Errorf("%s.image_sub_path: %q not in the image: %w", field, "missing", errdefs.ErrInvalidArgument)
	}
	return path.Join("/vol", m.GetImage().GetImage(), m.GetImageSubPath()), nil
}

func TestContainerImageVolumes(t *testing.T) {
	img := func(m *runtimeapi.Mount) *runtimeapi.Mount {
		if m.Image == nil {
			m.Image = &runtimeapi.ImageSpec{Image: "busybox"}
		}
		if m.ContainerPath == "" {
			m.ContainerPath = "/mnt/img"
		}
		return m
	}
	tests := []struct {
		name     string
		mounts   []*runtimeapi.Mount
		binds    []string
		errField string
		errKind  func(error) bool
		// asked is what the store must have been asked, in order.
		asked []string
	}{
		{
			name:   "whole image",
			mounts: []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true})},
			binds:  []string{"/vol/busybox:/mnt/img:ro"},
			asked:  []string{"config.mounts[0] busybox"},
		},
		{
			name: "sub path beside a host bind, relabelled shared, propagating",
			mounts: []*runtimeapi.Mount{
				{ContainerPath: "/data", HostPath: "/h"},
				img(&runtimeapi.Mount{Readonly: true, ImageSubPath: "usr/bin", SelinuxRelabel: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}),
			},
			binds: []string{"/h:/data", "/vol/busybox/usr/bin:/mnt/img:ro,rslave,z"},
			asked: []string{"config.mounts[1] busybox"},
		},
		{
			name:     "read-write",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{})},
			errField: "config.mounts[0].readonly", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "no image reference",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, Image: &runtimeapi.ImageSpec{}})},
			errField: "config.mounts[0].image.image", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "host path too",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, HostPath: "/h"})},
			errField: "config.mounts[0].host_path", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "relative container path",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, ContainerPath: "mnt"})},
			errField: "config.mounts[0].container_path", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "absolute sub path",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, ImageSubPath: "/etc"})},
			errField: "config.mounts[0].image_sub_path", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "sub path climbing out",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, ImageSubPath: "etc/../../x"})},
			errField: "config.mounts[0].image_sub_path", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "sub path a bind cannot express",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, ImageSubPath: "a:b"})},
			errField: "config.mounts[0].image_sub_path", errKind: errdefs.IsInvalidArgument,
			asked: []string{"config.mounts[0] busybox"},
		},
		{
			name:     "sub path not in the image",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, ImageSubPath: "missing"})},
			errField: "config.mounts[0].image_sub_path", errKind: errdefs.IsInvalidArgument,
			asked: []string{"config.mounts[0] busybox"},
		},
		{
			name:     "image not present",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, Image: &runtimeapi.ImageSpec{Image: "absent"}})},
			errField: "config.mounts[0].image", errKind: errdefs.IsNotFound,
			asked: []string{"config.mounts[0] absent"},
		},
		{
			name:     "mount options",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, MountOptions: []string{"noexec"}})},
			errField: "config.mounts[0].mount_options", errKind: errdefs.IsNotImplemented,
		},
		{
			name:     "recursive read-only",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, RecursiveReadOnly: true})},
			errField: "config.mounts[0].recursive_read_only", errKind: errdefs.IsNotImplemented,
		},
		{
			name:     "unknown propagation",
			mounts:   []*runtimeapi.Mount{img(&runtimeapi.Mount{Readonly: true, Propagation: 7})},
			errField: "config.mounts[0].propagation", errKind: errdefs.IsInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vols := &fakeVolumes{}
			p := baseContainer()
			p.Config.Mounts = tt.mounts
			p.ImageVolume = vols.resolve
			got, err := Container(p, fullHost())
			if tt.errField != "" {
				checkErr(t, err, tt.errField, tt.errKind)
			} else if err != nil {
				t.Fatal(err)
			} else if fmt.Sprint(got.HostConfig.Binds) != fmt.Sprint(tt.binds) {
				t.Errorf("binds = %q, want %q", got.HostConfig.Binds, tt.binds)
			}
			if fmt.Sprint(vols.asked) != fmt.Sprint(tt.asked) {
				t.Errorf("store asked %q, want %q", vols.asked, tt.asked)
			}
		})
	}
}

// Without a store, image volumes are not implemented whatever else is
// wrong with them: the caller learns first that none can be had.
func TestContainerImageVolumesUnsupported(t *testing.T) {
	p := baseContainer()
	p.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt", Image: &runtimeapi.ImageSpec{Image: "busybox"}}}
	_, err := Container(p, fullHost())
	checkErr(t, err, "config.mounts[0].image", errdefs.IsNotImplemented)
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error %v is also InvalidArgument", err)
	}
}
