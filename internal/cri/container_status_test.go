package cri

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerStatusExited(t *testing.T) {
	started := testNow.Add(time.Second)
	finished := testNow.Add(time.Minute + 500*time.Millisecond)
	tests := []struct {
		name       string
		exitCode   int
		oomKilled  bool
		wantReason string
	}{
		{"exit 0", 0, false, reasonCompleted},
		{"exit 1", 1, false, reasonError},
		{"killed", 137, false, reasonError},
		{"OOM killed", 137, true, reasonOOMKilled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			sbCfg := sandboxConfig("web")
			sb := e.runSandbox(t, sbCfg)
			id := e.createContainer(t, sb, sbCfg, containerConfig("app"))
			e.docker.SetClock(func() time.Time { return started })
			e.startContainer(t, id)
			e.docker.SetClock(func() time.Time { return finished })
			if err := e.docker.Exit(id, tt.exitCode, tt.oomKilled); err != nil {
				t.Fatal(err)
			}
			res, err := e.svc.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				t.Fatal(err)
			}
			st := res.Status
			got := []any{st.State, st.ExitCode, st.Reason, st.CreatedAt, st.StartedAt, st.FinishedAt}
			want := []any{runtimeapi.ContainerState_CONTAINER_EXITED, int32(tt.exitCode), tt.wantReason, testNow.UnixNano(), started.UnixNano(), finished.UnixNano()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[state exit reason created started finished] (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerStatusUnknown(t *testing.T) {
	e := newEnv(t)
	sb := e.runSandbox(t, sandboxConfig("web"))
	for _, id := range []string{strings.Repeat("ab", 32), sb} {
		_, err := e.svc.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if !errdefs.IsNotFound(err) {
			t.Errorf("ContainerStatus(%s): err = %v, want not found", id, err)
		}
	}
}

// TestContainerStatusMounts: the CRI mounts come back as they were asked
// for; berth's own /etc files are not among them.
func TestContainerStatusMounts(t *testing.T) {
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	mounts := []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: "/var/lib/kubelet/pods/x/volumes/data"},
		{ContainerPath: "/config", HostPath: "/var/lib/kubelet/pods/x/volumes/config", Readonly: true},
		{ContainerPath: "/host", HostPath: "/", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/shared", HostPath: "/mnt/shared", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, SelinuxRelabel: true},
	}
	cfg := containerConfig("app")
	cfg.Mounts = mounts
	id := e.createContainer(t, sb, sbCfg, cfg)
	st, err := e.svc.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mounts, st.Status.Mounts, protocmp.Transform()); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
}

func TestListContainers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	webCfg, dbCfg := sandboxConfig("web"), sandboxConfig("db")
	web, db := e.runSandbox(t, webCfg), e.runSandbox(t, dbCfg)
	app := e.createContainer(t, web, webCfg, containerConfig("app"))
	e.startContainer(t, app)
	side := e.createContainer(t, web, webCfg, containerConfig("side"))
	pg := e.createContainer(t, db, dbCfg, containerConfig("pg"))
	e.startContainer(t, pg)
	if err := e.docker.Exit(pg, 1, false); err != nil {
		t.Fatal(err)
	}

	state := func(s runtimeapi.ContainerState) *runtimeapi.ContainerStateValue {
		return &runtimeapi.ContainerStateValue{State: s}
	}
	tests := []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string
	}{
		{"no filter", nil, []string{app, side, pg}},
		{"id", &runtimeapi.ContainerFilter{Id: side}, []string{side}},
		{"id prefix", &runtimeapi.ContainerFilter{Id: pg[:9]}, []string{pg}},
		{"sandbox id", &runtimeapi.ContainerFilter{PodSandboxId: web}, []string{app, side}},
		{"sandbox id prefix", &runtimeapi.ContainerFilter{PodSandboxId: db[:10]}, []string{pg}},
		{"running", &runtimeapi.ContainerFilter{State: state(runtimeapi.ContainerState_CONTAINER_RUNNING)}, []string{app}},
		{"created", &runtimeapi.ContainerFilter{State: state(runtimeapi.ContainerState_CONTAINER_CREATED)}, []string{side}},
		{"exited", &runtimeapi.ContainerFilter{State: state(runtimeapi.ContainerState_CONTAINER_EXITED)}, []string{pg}},
		{"label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"container": "side"}}, []string{side}},
		{"label and sandbox disagree", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"container": "side"}, PodSandboxId: db}, nil},
		{"sandbox and state", &runtimeapi.ContainerFilter{PodSandboxId: web, State: state(runtimeapi.ContainerState_CONTAINER_CREATED)}, []string{side}},
		{"sandbox label is not a container label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "web"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.svc.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: tt.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range res.Containers {
				got = append(got, c.Id)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
		})
	}

	res, err := e.svc.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: app}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := containerConfig("app")
	want := []*runtimeapi.Container{{
		Id: app, PodSandboxId: web, Metadata: cfg.Metadata, Image: &runtimeapi.ImageSpec{Image: testImage},
		ImageRef: e.image.ID, ImageId: e.image.ID, State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		CreatedAt: testNow.UnixNano(), Labels: cfg.Labels, Annotations: cfg.Annotations,
	}}
	if diff := cmp.Diff(want, res.Containers, protocmp.Transform()); diff != "" {
		t.Errorf("item (-want +got):\n%s", diff)
	}
}

// TestForeignContainer: a container berth did not make is invisible and
// untouchable, whatever its name says.
func TestForeignContainer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	res, err := e.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "k8s_app_web_default_web-uid_0",
		Config: &container.Config{Image: testImage, Labels: map[string]string{"io.kubernetes.pod.name": "web"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	if _, err := e.docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}

	list, err := e.svc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 0 {
		t.Errorf("ListContainers = %v, %v; want nothing", list.Containers, err)
	}
	sbList, err := e.svc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(sbList.Items) != 0 {
		t.Errorf("ListPodSandbox = %v, %v; want nothing", sbList.Items, err)
	}
	for _, ref := range []string{id, id[:12], "k8s_app_web_default_web-uid_0"} {
		if _, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ref}); !errdefs.IsNotFound(err) {
			t.Errorf("ContainerStatus(%s): err = %v, want not found", ref, err)
		}
		if _, err := e.svc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ref}); err != nil {
			t.Errorf("StopContainer(%s): %v", ref, err)
		}
		if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ref}); err != nil {
			t.Errorf("RemoveContainer(%s): %v", ref, err)
		}
	}
	if c, ok := e.docker.Container(id); !ok || !c.State.Running {
		t.Error("berth stopped or removed a container it did not make")
	}
}
