package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestStopPodSandboxUnknown(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{strings.Repeat("ab", 32), "deadbeef", "no-such-pod"} {
		if _, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("StopPodSandbox(%q): %v, want success", id, err)
		}
		if _, err := e.svc.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox(%q): %v, want success", id, err)
		}
	}
	if n := len(e.net.Teardowns()); n != 0 {
		t.Errorf("%d Teardown calls for unknown sandboxes", n)
	}
	if _, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{}); !errdefs.IsInvalidArgument(err) || field(err) != "pod_sandbox_id" {
		t.Errorf("StopPodSandbox(\"\"): err = %v, want invalid argument naming pod_sandbox_id", err)
	}
}

func TestStopPodSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cfg := sandboxConfig("web")
	id := e.runSandbox(t, cfg)
	running := e.createContainer(t, id, cfg, containerConfig("app"))
	e.startContainer(t, running)
	created := e.createContainer(t, id, cfg, containerConfig("sidecar"))
	pause, _ := e.docker.Container(id)

	if _, err := e.svc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.docker.Container(running); c.State.Running {
		t.Error("container still running after StopPodSandbox")
	}
	if c, _ := e.docker.Container(created); c.State.Status != container.StateCreated {
		t.Errorf("created container is %s, want left created", c.State.Status)
	}
	if c, _ := e.docker.Container(id); c.State.Running {
		t.Error("pause container still running after StopPodSandbox")
	}
	teardowns := e.net.Teardowns()
	if len(teardowns) != 1 || teardowns[0].NetNS != fmt.Sprintf("/proc/%d/ns/net", pause.State.Pid) || teardowns[0].ID != id {
		t.Fatalf("Teardown calls = %+v, want one in the pause container's namespace", teardowns)
	}
	if cp, err := e.store.Read(id); err != nil || cp.NetworkReady {
		t.Errorf("checkpoint after stop = %+v, %v; want NetworkReady false", cp, err)
	}
	st, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.Network != nil {
		t.Errorf("status after stop: state %v network %v, want NOTREADY without IP", st.Status.State, st.Status.Network)
	}

	// Stopping again succeeds without running the plugins again: the
	// checkpoint records the teardown, and nothing runs that could have
	// set the network up since.
	if _, err := e.svc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if teardowns := e.net.Teardowns(); len(teardowns) != 1 {
		t.Errorf("Teardown calls after a second stop = %+v, want still one", teardowns)
	}
	if cp, err := e.store.Read(id); err != nil || !cp.NetworkDeleted {
		t.Errorf("checkpoint after stop = %+v, %v; want NetworkDeleted", cp, err)
	}
}

func TestStopPodSandboxPauseExited(t *testing.T) {
	e := newEnv(t)
	id := e.runSandbox(t, sandboxConfig("web"))
	if err := e.docker.Exit(id, 2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	teardowns := e.net.Teardowns()
	if len(teardowns) != 1 {
		t.Fatalf("%d Teardown calls, want 1", len(teardowns))
	}
	if teardowns[0].NetNS != "" {
		t.Errorf("Teardown NetNS = %q for an exited pause container, want \"\" (never a stale /proc path)", teardowns[0].NetNS)
	}
}

func TestStopPodSandboxTeardownFails(t *testing.T) {
	e := newEnv(t)
	id := e.runSandbox(t, sandboxConfig("web"))
	errBoom := errors.New("cni: boom")
	e.net.teardownErr = errBoom
	_, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the teardown failure", err)
	}
	// The kubelet retries; until the network is down the sandbox keeps
	// its namespace, so the pause container must still run.
	if c, _ := e.docker.Container(id); !c.State.Running {
		t.Error("pause container stopped although its network was not torn down")
	}
	e.net.teardownErr = nil
	if _, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestRemovePodSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cfg := sandboxConfig("web")
	id := e.runSandbox(t, cfg)
	running := e.createContainer(t, id, cfg, containerConfig("app"))
	e.startContainer(t, running)
	e.createContainer(t, id, cfg, containerConfig("sidecar"))
	otherCfg := sandboxConfig("db")
	other := e.runSandbox(t, otherCfg)
	otherCtr := e.createContainer(t, other, otherCfg, containerConfig("postgres"))

	if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range e.docker.Containers() {
		left = append(left, c.ID)
	}
	if diff := cmp.Diff([]string{other, otherCtr}, left); diff != "" {
		t.Errorf("containers left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{other}, e.sandboxDirs(t)); diff != "" {
		t.Errorf("sandbox dirs left (-want +got):\n%s", diff)
	}
	if n := len(e.net.Teardowns()); n != 1 {
		t.Errorf("%d Teardown calls, want 1", n)
	}
	if _, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); !errdefs.IsNotFound(err) {
		t.Errorf("status of a removed sandbox: err = %v, want not found", err)
	}
	if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("second remove: %v, want success", err)
	}
}

// TestRemovePodSandboxPauseGone: the pause container went away behind
// berth's back; the checkpoint still lets Remove tear the network down.
func TestRemovePodSandboxPauseGone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	id := e.runSandbox(t, sandboxConfig("web"))
	if _, err := e.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	teardowns := e.net.Teardowns()
	if len(teardowns) != 1 || teardowns[0].ID != id || teardowns[0].NetNS != "" {
		t.Errorf("Teardown calls = %+v, want one for %s without NetNS", teardowns, id)
	}
	if dirs := e.sandboxDirs(t); len(dirs) != 0 {
		t.Errorf("sandbox dirs left: %v", dirs)
	}
}
