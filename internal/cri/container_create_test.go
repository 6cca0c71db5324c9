package cri

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/docker/dockertest"
	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCreateContainer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	cfg := containerConfig("app")
	id := e.createContainer(t, sb, sbCfg, cfg)

	c, ok := e.docker.Container(id)
	if !ok {
		t.Fatalf("no container %s", id)
	}
	if c.Name != "/k8s_app_web_default_web-uid_1" {
		t.Errorf("name = %q", c.Name)
	}
	if c.Config.Image != e.image.ID || c.State.Status != container.StateCreated {
		t.Errorf("image %q state %q, want %s created", c.Config.Image, c.State.Status, e.image.ID)
	}
	if c.HostConfig.NetworkMode != container.NetworkMode("container:"+sb) {
		t.Errorf("network mode = %q, want the sandbox's", c.HostConfig.NetworkMode)
	}
	for _, f := range []string{"resolv.conf", "hosts", "hostname"} {
		bind := filepath.Join(e.root, sb, f) + ":/etc/" + f
		if !slices.ContainsFunc(c.HostConfig.Binds, func(b string) bool { return strings.HasPrefix(b, bind) }) {
			t.Errorf("binds %q lack the sandbox's %s", c.HostConfig.Binds, f)
		}
	}

	st, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.ContainerStatus{
		Id:          id,
		Metadata:    cfg.Metadata,
		State:       runtimeapi.ContainerState_CONTAINER_CREATED,
		CreatedAt:   testNow.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: testImage},
		ImageRef:    e.image.ID,
		ImageId:     e.image.ID,
		Labels:      cfg.Labels,
		Annotations: cfg.Annotations,
		LogPath:     "/var/log/pods/default_web/app/1.log",
	}
	if diff := cmp.Diff(want, st.Status, protocmp.Transform(), protocmp.IgnoreFields(&runtimeapi.ContainerStatus{}, "resources")); diff != "" {
		t.Errorf("ContainerStatus (-want +got):\n%s", diff)
	}
}

func TestCreateContainerErrors(t *testing.T) {
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	ctr := e.createContainer(t, sb, sbCfg, containerConfig("existing"))
	stoppedCfg := sandboxConfig("stopped")
	stopped := e.runSandbox(t, stoppedCfg)
	if _, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: stopped}); err != nil {
		t.Fatal(err)
	}

	req := func(sandboxID string, edit func(*runtimeapi.ContainerConfig, *runtimeapi.PodSandboxConfig)) *runtimeapi.CreateContainerRequest {
		cfg, sc := containerConfig("app"), sandboxConfig("web")
		if edit != nil {
			edit(cfg, sc)
		}
		return &runtimeapi.CreateContainerRequest{PodSandboxId: sandboxID, Config: cfg, SandboxConfig: sc}
	}
	tests := []struct {
		name    string
		req     *runtimeapi.CreateContainerRequest
		wantErr func(error) bool
		field   string // for invalid arguments
	}{
		{"unknown sandbox", req(strings.Repeat("ab", 32), nil), errdefs.IsNotFound, ""},
		{"container as sandbox", req(ctr, nil), errdefs.IsNotFound, ""},
		{"stopped sandbox", req(stopped, nil), errdefs.IsFailedPrecondition, ""},
		{"unknown image", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.Image.Image = "nginx:1.27"
		}), errdefs.IsNotFound, ""},
		{"nil config", &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: sbCfg}, errdefs.IsInvalidArgument, "config"},
		{"empty name", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.Metadata.Name = ""
		}), errdefs.IsInvalidArgument, "config.metadata.name"},
		{"underscore in name", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.Metadata.Name = "a_b"
		}), errdefs.IsInvalidArgument, "config.metadata.name"},
		{"nil sandbox config", &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: containerConfig("app")}, errdefs.IsInvalidArgument, "sandbox_config"},
		{"empty image", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.Image.Image = ""
		}), errdefs.IsInvalidArgument, "config.image.image"},
		{"log_path climbing", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.LogPath = "app/../../../../etc/cron.d/x"
		}), errdefs.IsInvalidArgument, "config.log_path"},
		{"log_path is ..", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.LogPath = ".."
		}), errdefs.IsInvalidArgument, "config.log_path"},
		{"absolute log_path", req(sb, func(c *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) {
			c.LogPath = "/etc/passwd"
		}), errdefs.IsInvalidArgument, "config.log_path"},
		{"relative log_directory", req(sb, func(_ *runtimeapi.ContainerConfig, s *runtimeapi.PodSandboxConfig) {
			s.LogDirectory = "var/log/pods"
		}), errdefs.IsInvalidArgument, "sandbox_config.log_directory"},
		{"no log_directory", req(sb, func(_ *runtimeapi.ContainerConfig, s *runtimeapi.PodSandboxConfig) {
			s.LogDirectory = ""
		}), errdefs.IsInvalidArgument, "sandbox_config.log_directory"},
		{"empty pod_sandbox_id", req("", nil), errdefs.IsInvalidArgument, "pod_sandbox_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := count(e.docker, "ContainerCreate")
			_, err := e.svc.CreateContainer(context.Background(), tt.req)
			if err == nil || !tt.wantErr(err) {
				t.Fatalf("err = %v, want another kind", err)
			}
			if tt.field != "" && field(err) != tt.field {
				t.Errorf("error %q names field %q, want %q", err, field(err), tt.field)
			}
			if n := count(e.docker, "ContainerCreate") - before; n != 0 {
				t.Errorf("%d ContainerCreate calls, want none", n)
			}
		})
	}
}

func TestCreateContainerNameInUse(t *testing.T) {
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	e.createContainer(t, sb, sbCfg, containerConfig("app"))
	_, err := e.svc.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{
		PodSandboxId: sb, Config: containerConfig("app"), SandboxConfig: sbCfg,
	})
	if !errdefs.IsConflict(err) {
		t.Errorf("second create of one attempt: err = %v, want conflict", err)
	}
}

// TestLabelsRoundTrip: Docker merges an image's LABELs into the labels of
// a container made from it; labels and annotations must still come back
// exactly as the kubelet sent them, whatever the image says.
func TestLabelsRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	evil := map[string]string{
		naming.LabelLabels:       `{"injected":"by-image"}`,
		naming.LabelAnnotations:  `{"injected":"by-image"}`,
		naming.LabelManaged:      "false",
		naming.LabelType:         naming.TypeSandbox,
		naming.LabelSandboxID:    strings.Repeat("0", 64),
		naming.LabelLogPath:      "/etc/shadow",
		naming.LabelCreatedAt:    "1",
		"container":              "from-image",
		"io.kubernetes.pod.name": "from-image",
	}
	e.docker.AddImage(dockertest.Image{ID: e.image.ID, RepoTags: []string{testImage}, Labels: evil})
	e.docker.AddImage(dockertest.Image{ID: e.pause.ID, RepoTags: []string{testPauseImage}, Labels: evil})

	sbCfg := sandboxConfig("web")
	sbCfg.Labels["container"] = "mine"
	sbCfg.Annotations[naming.LabelLabels] = "an annotation that looks like berth's"
	sb := e.runSandbox(t, sbCfg)
	cfg := containerConfig("app")
	cfg.Labels = map[string]string{"io.berth.type": "sandbox", "empty": ""}
	cfg.Annotations = nil
	id := e.createContainer(t, sb, sbCfg, cfg)

	// The merge happened: the image's plain label is on the container.
	if c, _ := e.docker.Container(id); c.Config.Labels["container"] != "from-image" {
		t.Fatalf("fake did not merge image labels: %v", c.Config.Labels)
	}

	cst, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 1 {
		t.Fatalf("ListContainers = %v, %v", list, err)
	}
	sst, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb})
	if err != nil {
		t.Fatal(err)
	}
	sbList, err := e.svc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(sbList.Items) != 1 {
		t.Fatalf("ListPodSandbox = %v, %v", sbList, err)
	}
	type pair struct{ Labels, Annotations map[string]string }
	wantCtr := pair{cfg.Labels, map[string]string{}}
	wantSb := pair{sbCfg.Labels, sbCfg.Annotations}
	for _, c := range []struct {
		name      string
		got, want pair
	}{
		{"ContainerStatus", pair{cst.Status.Labels, cst.Status.Annotations}, wantCtr},
		{"ListContainers", pair{list.Containers[0].Labels, list.Containers[0].Annotations}, wantCtr},
		{"PodSandboxStatus", pair{sst.Status.Labels, sst.Status.Annotations}, wantSb},
		{"ListPodSandbox", pair{sbList.Items[0].Labels, sbList.Items[0].Annotations}, wantSb},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s labels and annotations (-want +got):\n%s", c.name, diff)
		}
	}
	if cst.Status.LogPath != "/var/log/pods/default_web/app/1.log" || cst.Status.CreatedAt != testNow.UnixNano() {
		t.Errorf("log path %q created %d: taken from the image's labels", cst.Status.LogPath, cst.Status.CreatedAt)
	}
	if list.Containers[0].PodSandboxId != sb {
		t.Errorf("sandbox ID %q, want %s", list.Containers[0].PodSandboxId, sb)
	}
}
