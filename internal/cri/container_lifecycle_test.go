package cri

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestStartContainer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	id := e.createContainer(t, sb, sbCfg, containerConfig("app"))

	e.startContainer(t, id)
	st, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Status; s.State != runtimeapi.ContainerState_CONTAINER_RUNNING || s.StartedAt != testNow.UnixNano() || s.FinishedAt != 0 || s.Reason != "" {
		t.Errorf("status of a running container: state %v started %d finished %d reason %q", s.State, s.StartedAt, s.FinishedAt, s.Reason)
	}

	_, err = e.svc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
	if !errdefs.IsFailedPrecondition(err) {
		t.Errorf("second start: err = %v, want failed precondition", err)
	}
	if err := e.docker.Exit(id, 0, false); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
	if !errdefs.IsFailedPrecondition(err) {
		t.Errorf("start after exit: err = %v, want failed precondition (the kubelet makes a new container)", err)
	}
	_, err = e.svc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: strings.Repeat("ab", 32)})
	if !errdefs.IsNotFound(err) {
		t.Errorf("start of an unknown container: err = %v, want not found", err)
	}
	if n := count(e.docker, "ContainerStart"); n != 2 {
		t.Errorf("%d ContainerStart calls, want 2 (sandbox and container)", n)
	}
}

func TestStopAndRemoveContainer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	id := e.createContainer(t, sb, sbCfg, containerConfig("app"))
	e.startContainer(t, id)

	if _, err := e.svc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 30}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.docker.Container(id); c.State.Running {
		t.Error("still running after StopContainer")
	}
	if _, err := e.svc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}

	// A running container is removed too.
	other := e.createContainer(t, sb, sbCfg, containerConfig("other"))
	e.startContainer(t, other)
	for _, id := range []string{id, other} {
		if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.docker.Container(id); ok {
			t.Errorf("container %s still there after RemoveContainer", id)
		}
		if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("second remove: %v, want success", err)
		}
	}
	// The sandbox is not the container's to remove.
	if _, ok := e.docker.Container(sb); !ok {
		t.Error("RemoveContainer removed the sandbox")
	}
}

func TestStopRemoveContainerUnknown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sb := e.runSandbox(t, sandboxConfig("web"))
	// A sandbox ID is not a container ID: Stop and Remove must not touch it.
	for _, id := range []string{strings.Repeat("ab", 32), "deadbeef", sb} {
		if _, err := e.svc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("StopContainer(%q): %v, want success", id, err)
		}
		if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer(%q): %v, want success", id, err)
		}
	}
	if c, ok := e.docker.Container(sb); !ok || !c.State.Running {
		t.Error("Stop/RemoveContainer of a sandbox ID touched the sandbox")
	}
}

func TestUpdateContainerResources(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sbCfg := sandboxConfig("web")
	id := e.createContainer(t, e.runSandbox(t, sbCfg), sbCfg, containerConfig("app"))
	_, err := e.svc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: id,
		Linux:       &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	r := st.Status.Resources.GetLinux()
	if r.MemoryLimitInBytes != 256<<20 || r.CpuShares != 512 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 {
		t.Errorf("resources after update = %v", r)
	}
	_, err = e.svc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: strings.Repeat("ab", 32)})
	if !errdefs.IsNotFound(err) {
		t.Errorf("update of an unknown container: err = %v, want not found", err)
	}
}
