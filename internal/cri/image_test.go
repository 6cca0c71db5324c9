package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/docker/dockertest"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestListImages(t *testing.T) {
	e := newEnv(t)
	digest := "nginx@sha256:" + strings.Repeat("c", 64)
	nginx := e.docker.AddImage(dockertest.Image{RepoTags: []string{"nginx:1.27", "nginx:latest"}, RepoDigests: []string{digest}, Size: 70 << 20, User: "101"})

	res, err := e.svc.ListImages(context.Background(), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []*runtimeapi.Image{
		{Id: nginx.ID, RepoTags: []string{"nginx:1.27", "nginx:latest"}, RepoDigests: []string{digest}, Size: 70 << 20, Spec: &runtimeapi.ImageSpec{Image: nginx.ID}},
		{Id: e.image.ID, RepoTags: []string{testImage}, RepoDigests: []string{}, Size: 4_000_000, Spec: &runtimeapi.ImageSpec{Image: e.image.ID}},
		{Id: e.pause.ID, RepoTags: []string{testPauseImage}, RepoDigests: []string{}, Size: 700_000, Spec: &runtimeapi.ImageSpec{Image: e.pause.ID}, Pinned: true},
	}
	if diff := cmp.Diff(want, res.Images, protocmp.Transform(), protocmp.SortRepeated(func(a, b *runtimeapi.Image) bool { return a.Id < b.Id })); diff != "" {
		t.Errorf("ListImages (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		ref  string
		want []string
	}{
		{"nginx:latest", []string{nginx.ID}},
		{e.pause.ID, []string{e.pause.ID}},
		{"nginx:1.26", nil},
	} {
		res, err := e.svc.ListImages(context.Background(), &runtimeapi.ListImagesRequest{
			Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: tt.ref}},
		})
		if err != nil {
			t.Fatalf("ListImages(%s): %v", tt.ref, err)
		}
		var got []string
		for _, img := range res.Images {
			got = append(got, img.Id)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ListImages(%s) (-want +got):\n%s", tt.ref, diff)
		}
	}
}

func TestImageStatus(t *testing.T) {
	e := newEnv(t)
	named := e.docker.AddImage(dockertest.Image{RepoTags: []string{"app:named"}, User: "nginx:nginx"})
	numeric := e.docker.AddImage(dockertest.Image{RepoTags: []string{"app:numeric"}, User: "1000:1000"})
	root := e.docker.AddImage(dockertest.Image{RepoTags: []string{"app:root"}, User: "0"})

	tests := []struct {
		ref          string
		wantID       string
		wantUID      *runtimeapi.Int64Value
		wantUsername string
	}{
		{testImage, e.image.ID, nil, ""},
		{"docker.io/library/" + testImage, e.image.ID, nil, ""},
		{e.image.ID, e.image.ID, nil, ""},
		{e.image.ID[7:19], e.image.ID, nil, ""},
		{"app:named", named.ID, nil, "nginx"},
		{"app:numeric", numeric.ID, &runtimeapi.Int64Value{Value: 1000}, ""},
		{"app:root", root.ID, &runtimeapi.Int64Value{Value: 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			res, err := e.svc.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: tt.ref}})
			if err != nil {
				t.Fatal(err)
			}
			img := res.GetImage()
			if img.GetId() != tt.wantID {
				t.Errorf("id = %q, want %q", img.GetId(), tt.wantID)
			}
			if diff := cmp.Diff(tt.wantUID, img.GetUid(), protocmp.Transform()); diff != "" {
				t.Errorf("uid (-want +got):\n%s", diff)
			}
			if img.GetUsername() != tt.wantUsername {
				t.Errorf("username = %q, want %q", img.GetUsername(), tt.wantUsername)
			}
		})
	}
}

func TestImageStatusUnknown(t *testing.T) {
	e := newEnv(t)
	res, err := e.svc.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "nginx:1.27"}, Verbose: true})
	if err != nil {
		t.Fatalf("ImageStatus of an unknown image: %v, want no error", err)
	}
	if res == nil || res.Image != nil || res.Info != nil {
		t.Errorf("ImageStatus of an unknown image = %v, want an empty response", res)
	}
	_, err = e.svc.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{})
	if !errdefs.IsInvalidArgument(err) || field(err) != "image.image" {
		t.Errorf("ImageStatus without image: err = %v, want invalid argument naming image.image", err)
	}
	e.docker.InjectError("ImageInspect", fmt.Errorf("daemon: %w", errdefs.ErrUnavailable))
	if _, err := e.svc.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: testImage}}); !errdefs.IsUnavailable(err) {
		t.Errorf("ImageStatus with Docker down: err = %v, want unavailable", err)
	}
}

func TestRemoveImage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	nginx := e.docker.AddImage(dockertest.Image{RepoTags: []string{"nginx:1.27", "nginx:latest"}})

	if _, err := e.svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "nginx:1.27"}}); err != nil {
		t.Fatal(err)
	}
	if img, ok := e.docker.Image(nginx.ID); ok {
		t.Errorf("image still there with tags %q: RemoveImage removes the image, every tag", img.RepoTags)
	}
	for _, ref := range []string{"nginx:1.27", nginx.ID, "nosuch:1"} {
		if _, err := e.svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			t.Errorf("RemoveImage(%s) of an unknown image: %v, want success", ref, err)
		}
	}
	if _, err := e.svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{}); !errdefs.IsInvalidArgument(err) || field(err) != "image.image" {
		t.Errorf("RemoveImage without image: err = %v, want invalid argument naming image.image", err)
	}

	// An image a running container uses stays, and the caller learns why.
	sbCfg := sandboxConfig("web")
	e.startContainer(t, e.createContainer(t, e.runSandbox(t, sbCfg), sbCfg, containerConfig("app")))
	_, err := e.svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: testImage}})
	if !errdefs.IsConflict(err) {
		t.Errorf("RemoveImage of an image in use: err = %v, want conflict", err)
	}
	if _, ok := e.docker.Image(e.image.ID); !ok {
		t.Error("image in use was removed")
	}
}

func TestImageFsInfo(t *testing.T) {
	e := newEnv(t)
	res, err := e.svc.ImageFsInfo(context.Background(), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		Timestamp: testNow.UnixNano(),
		FsId:      &runtimeapi.FilesystemIdentifier{Mountpoint: "/var/lib/docker/overlay2"},
		UsedBytes: &runtimeapi.UInt64Value{Value: 4_700_000},
	}}}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("ImageFsInfo (-want +got):\n%s", diff)
	}
	e.docker.InjectError("Info", errors.New("daemon down"))
	if _, err := e.svc.ImageFsInfo(context.Background(), &runtimeapi.ImageFsInfoRequest{}); err == nil {
		t.Error("ImageFsInfo with Docker failing: no error")
	}
}

// TestPauseImagePinned: the kubelet's image GC leaves pinned images alone,
// and berth never pulls its pause image, so the pause image must be
// reported pinned however the configuration spells its name: Docker
// reports Docker Hub images by their short name ("rancher/pause:3.6")
// and adds ":latest" to an untagged name.
func TestPauseImagePinned(t *testing.T) {
	tests := []struct {
		configured string // --pod-infra-image
		dockerTag  string // the RepoTags entry Docker reports for it
	}{
		{testPauseImage, testPauseImage},
		{"docker.io/rancher/mirrored-pause:3.6", "rancher/mirrored-pause:3.6"},
		{"berth.local/pause", "berth.local/pause:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.configured, func(t *testing.T) {
			e := newEnv(t)
			pause := e.docker.AddImage(dockertest.Image{ID: dockertest.ImageID(tt.configured), RepoTags: []string{tt.dockerTag}})
			svc, err := New(Options{Docker: e.docker, Network: e.net, Sandboxes: e.store, PauseImage: tt.configured})
			if err != nil {
				t.Fatal(err)
			}
			// Docker itself finds the image under the configured name.
			if _, err := svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig("web")}); err != nil {
				t.Fatalf("RunPodSandbox with pause image %s: %v", tt.configured, err)
			}
			st, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: tt.configured}})
			if err != nil || st.Image.GetId() != pause.ID {
				t.Fatalf("ImageStatus(%s) = %v, %v", tt.configured, st, err)
			}
			if !st.Image.Pinned {
				t.Errorf("ImageStatus: pause image %s (Docker tag %s) not pinned", tt.configured, tt.dockerTag)
			}
			list, err := svc.ListImages(context.Background(), &runtimeapi.ListImagesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range list.Images {
				if img.Id == pause.ID && !img.Pinned {
					t.Errorf("ListImages: pause image %s (Docker tag %s) not pinned", tt.configured, tt.dockerTag)
				}
			}
		})
	}
}
