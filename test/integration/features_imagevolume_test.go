package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/naming"
	"github.com/moby/moby/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestFeaturesImageVolume mounts a sub path of an image into a container
// (Mount.image, which Docker 20.10 cannot do itself) and checks it is
// there, read-only but executable, and reported back by ContainerStatus.
func TestFeaturesImageVolume(t *testing.T) {
	e := newEnv(t)
	img, err := e.img.ImageStatus(e.ctx(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
	if err != nil || img.GetImage() == nil {
		t.Fatalf("ImageStatus %s: %v, %v", busybox, img, err)
	}
	imageID := img.GetImage().GetId()
	volume := func(sub string, readonly bool) *runtimeapi.Mount {
		return &runtimeapi.Mount{
			ContainerPath: "/mnt/img", Readonly: readonly, ImageSubPath: sub,
			Image: &runtimeapi.ImageSpec{Image: busybox, UserSpecifiedImage: busybox},
		}
	}
	pod, podID := e.startPod("imagevolume", nil)

	cfg := containerConfig("imagevolume", "sleep 3600")
	cfg.Mounts = []*runtimeapi.Mount{volume("bin", true)}
	id := e.runContainer(podID, pod, cfg)

	if r := e.execSync(id, 10, "ls", "/mnt/img/busybox"); r.ExitCode != 0 {
		t.Errorf("ls /mnt/img/busybox: exit %d: %s", r.ExitCode, r.Stderr)
	}
	if r := e.execSync(id, 10, "/mnt/img/busybox", "echo", "ran"); r.ExitCode != 0 || strings.TrimSpace(string(r.Stdout)) != "ran" {
		t.Errorf("running /mnt/img/busybox: exit %d, out %q, err %q; want it executable", r.ExitCode, r.Stdout, r.Stderr)
	}
	if r := e.execSync(id, 10, "touch", "/mnt/img/written"); r.ExitCode == 0 {
		t.Error("touch /mnt/img/written succeeded; want the image volume read-only")
	}

	want := &runtimeapi.Mount{
		ContainerPath: "/mnt/img", Readonly: true, ImageSubPath: "bin",
		Image: &runtimeapi.ImageSpec{Image: busybox, UserSpecifiedImage: busybox, ImageRef: imageID},
	}
	mounts := e.containerStatus(id).GetMounts()
	if len(mounts) != 1 || !proto.Equal(mounts[0], want) {
		t.Errorf("ContainerStatus.mounts = %s, want [%s]", mustJSON(mounts), mustJSON(want))
	}

	// The tree is berth's, once per image; the helper container is gone.
	tree := filepath.Join(e.root, "image-volumes", strings.TrimPrefix(imageID, "sha256:"), "rootfs", "bin", "busybox")
	if _, err := os.Stat(tree); err != nil {
		t.Errorf("image volume tree: %v", err)
	}
	f := client.Filters{}
	f.Add("label", naming.LabelType+"="+naming.TypeImageVolume, naming.LabelVolumeImage+"="+imageID)
	if res, err := e.s.docker.ContainerList(e.ctx(), client.ContainerListOptions{All: true, Filters: f}); err != nil || len(res.Items) != 0 {
		t.Errorf("helper containers left: %v, %v", res.Items, err)
	}

	t.Run("rejected", func(t *testing.T) {
		e := e.forT(t)
		for _, tt := range []struct {
			name  string
			mount *runtimeapi.Mount
			field string
		}{
			{"sub path not in the image", volume("not-existing", true), "config.mounts[0].image_sub_path"},
			{"read-write", volume("", false), "config.mounts[0].readonly"},
		} {
			cfg := containerConfig("rejected", "sleep 3600")
			cfg.Mounts = []*runtimeapi.Mount{tt.mount}
			_, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("%s: CreateContainer = %v, want InvalidArgument naming %s", tt.name, err, tt.field)
			}
		}
	})
}
