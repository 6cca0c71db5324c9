package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/docker/dockertest"
	"github.com/berth-project/berth/internal/imagevolume"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/client"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// exportingDocker is the fake daemon with the export the image volume
// store needs (dockertest has none): every container exports one archive.
type exportingDocker struct {
	*dockertest.Fake
	archive []byte
}

func (x *exportingDocker) ContainerExport(_ context.Context, id string, _ client.ContainerExportOptions) (client.ContainerExportResult, error) {
	if _, ok := x.Container(id); !ok {
		return nil, errdefs.ErrNotFound.WithMessage("no such container: " + id)
	}
	return io.NopCloser(bytes.NewReader(x.archive)), nil
}

// volumeArchive is an image's file system: /etc/passwd and /bin/sh.
func volumeArchive(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, h := range []struct {
		name, body string
		typ        byte
	}{{"etc/", "", tar.TypeDir}, {"etc/passwd", "root:x:0:0", tar.TypeReg}, {"bin/", "", tar.TypeDir}, {"bin/sh", "#!", tar.TypeReg}} {
		if err := w.WriteHeader(&tar.Header{Name: h.name, Typeflag: h.typ, Mode: 0o755, Size: int64(len(h.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(h.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const testVolumeImage = "berth.local/data:1"

// withImageVolumes gives e's service an image volume store and an image
// to mount; it returns the store's directory and the image.
func withImageVolumes(t *testing.T, e *env) (string, dockertest.Image) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "image-volumes")
	store, err := imagevolume.New(imagevolume.Options{Docker: &exportingDocker{Fake: e.docker, archive: volumeArchive(t)}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.imageVolumes = store
	img := e.docker.AddImage(dockertest.Image{ID: dockertest.ImageID("data"), RepoTags: []string{testVolumeImage}})
	return dir, img
}

func withImageVolume(cfg *runtimeapi.ContainerConfig, ref, sub string, readonly bool) *runtimeapi.ContainerConfig {
	cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{
		ContainerPath: "/mnt/img", Readonly: readonly, ImageSubPath: sub,
		Image: &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: testVolumeImage},
	})
	return cfg
}

func TestCreateContainerImageVolume(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir, img := withImageVolumes(t, e)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	id := e.createContainer(t, sb, sbCfg, withImageVolume(containerConfig("app"), testVolumeImage, "etc", true))

	c, _ := e.docker.Container(id)
	tree := filepath.Join(dir, strings.TrimPrefix(img.ID, "sha256:"), "rootfs")
	if want := tree + "/etc:/mnt/img:ro"; c.HostConfig.Binds[0] != want {
		t.Errorf("bind = %q, want %q", c.HostConfig.Binds[0], want)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "etc/passwd")); err != nil || string(b) != "root:x:0:0" {
		t.Errorf("etc/passwd of the tree: %q, %v", b, err)
	}
	if n := len(e.docker.Containers()); n != 2 {
		t.Errorf("%d containers in Docker, want the sandbox and the container (no helper left)", n)
	}

	st, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := []*runtimeapi.Mount{{
		ContainerPath: "/mnt/img", Readonly: true, ImageSubPath: "etc",
		Image: &runtimeapi.ImageSpec{Image: testVolumeImage, UserSpecifiedImage: testVolumeImage, ImageRef: img.ID},
	}}
	if diff := cmp.Diff(want, st.Status.Mounts, protocmp.Transform()); diff != "" {
		t.Errorf("ContainerStatus.mounts (-want +got):\n%s", diff)
	}

	// A second container of the image reuses the tree: one export.
	other := withImageVolume(containerConfig("other"), img.ID, "", true)
	other.Mounts[0].SelinuxRelabel = true
	id = e.createContainer(t, sb, sbCfg, other)
	if n := count(e.docker, "ContainerCreate"); n != 4 {
		t.Errorf("ContainerCreate calls = %d, want 4 (sandbox, helper, two containers)", n)
	}
	if c, _ := e.docker.Container(id); c.HostConfig.Binds[0] != tree+":/mnt/img:ro,z" {
		t.Errorf("bind = %q, want the tree, shared-relabelled", c.HostConfig.Binds[0])
	}
	st, err = e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	want = []*runtimeapi.Mount{{
		ContainerPath: "/mnt/img", Readonly: true, SelinuxRelabel: true,
		Image: &runtimeapi.ImageSpec{Image: img.ID, UserSpecifiedImage: testVolumeImage, ImageRef: img.ID},
	}}
	if diff := cmp.Diff(want, st.Status.Mounts, protocmp.Transform()); diff != "" {
		t.Errorf("ContainerStatus.mounts (-want +got):\n%s", diff)
	}
}

func TestCreateContainerImageVolumeErrors(t *testing.T) {
	tests := []struct {
		name      string
		noStore   bool
		ref, sub  string
		readonly  bool
		wantField string
		wantKind  func(error) bool
	}{
		{"no store", true, testVolumeImage, "", true, "config.mounts[0].image", errdefs.IsNotImplemented},
		{"read-write", false, testVolumeImage, "", false, "config.mounts[0].readonly", errdefs.IsInvalidArgument},
		{"image not present", false, "berth.local/absent:1", "", true, "config.mounts[0].image", errdefs.IsNotFound},
		{"sub path not in the image", false, testVolumeImage, "not-existing", true, "config.mounts[0].image_sub_path", errdefs.IsInvalidArgument},
		{"sub path a file's child", false, testVolumeImage, "etc/passwd/x", true, "config.mounts[0].image_sub_path", errdefs.IsInvalidArgument},
		{"sub path climbing out", false, testVolumeImage, "../..", true, "config.mounts[0].image_sub_path", errdefs.IsInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if !tt.noStore {
				withImageVolumes(t, e)
			}
			sbCfg := sandboxConfig("web")
			sb := e.runSandbox(t, sbCfg)
			_, err := e.svc.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{
				PodSandboxId: sb, SandboxConfig: sbCfg,
				Config: withImageVolume(containerConfig("app"), tt.ref, tt.sub, tt.readonly),
			})
			if err == nil {
				t.Fatal("CreateContainer succeeded")
			}
			if field(err) != tt.wantField || !tt.wantKind(err) {
				t.Errorf("error %q: want field %s and the right kind", err, tt.wantField)
			}
			if n := len(e.docker.Containers()); n != 1 {
				t.Errorf("%d containers in Docker, want the sandbox only", n)
			}
		})
	}
}

// TestImageVolumeLifetime: a tree outlives its image while a container
// binds it, and goes with the last of them.
func TestImageVolumeLifetime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir, img := withImageVolumes(t, e)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	id := e.createContainer(t, sb, sbCfg, withImageVolume(containerConfig("app"), testVolumeImage, "", true))
	trees := func() []string {
		ids, err := e.svc.imageVolumes.List()
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}

	// The image is still there: a restart keeps the tree.
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{img.ID}, trees()); diff != "" {
		t.Fatalf("trees after Reconcile (-want +got):\n%s", diff)
	}
	// Removed from Docker while the container binds it: kept.
	if _, err := e.svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: testVolumeImage}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.docker.Image(img.ID); ok {
		t.Fatal("image still in Docker after RemoveImage")
	}
	if diff := cmp.Diff([]string{img.ID}, trees()); diff != "" {
		t.Fatalf("trees after RemoveImage of a bound image (-want +got):\n%s", diff)
	}
	if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	// The next RemoveImage (of anything) sweeps it.
	if _, err := e.svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "berth.local/unknown:1"}}); err != nil {
		t.Fatal(err)
	}
	if got := trees(); len(got) != 0 {
		t.Errorf("trees after the last container went = %v, want none", got)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("store directory holds %v, %v; want nothing", ents, err)
	}
}

func TestReconcileImageVolumes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, img := withImageVolumes(t, e)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	id := e.createContainer(t, sb, sbCfg, withImageVolume(containerConfig("app"), testVolumeImage, "", true))
	if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	// The image goes behind berth's back (docker rmi while berth was down).
	if _, err := e.docker.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.svc.imageVolumes.List(); err != nil || len(ids) != 0 {
		t.Errorf("trees after Reconcile = %v, %v; want none", ids, err)
	}
}

// CopyFromContainer: these tests read no single files out of images.
func (x *exportingDocker) CopyFromContainer(context.Context, string, client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	return client.CopyFromContainerResult{}, errdefs.ErrNotFound.WithMessage("no such path")
}
