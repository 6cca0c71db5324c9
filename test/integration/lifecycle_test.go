package integration

import (
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodLifecycle runs a pod with one container through the whole CRI
// lifecycle and checks each state on the way.
func TestPodLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	pod := e.podConfig("life")
	podID := e.runPod(pod)

	st, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.GetNetwork().GetIp() == "" {
		t.Fatalf("sandbox status = %s", mustJSON(st.Status))
	}
	ip := st.Status.Network.Ip

	cid := e.runContainer(podID, pod, containerConfig("main", "ip -4 addr show eth0; sleep 3600"))
	out := e.waitOutput(cid, "inet ", 10*time.Second)
	if !strings.Contains(out, "inet "+ip+"/") {
		t.Errorf("container sees eth0 as:\n%s\nwant the sandbox IP %s", out, ip)
	}
	cs, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING || cs.Status.StartedAt == 0 {
		t.Errorf("container status = %s", mustJSON(cs.Status))
	}

	if _, err := e.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if s := e.waitExit(cid, 10*time.Second); s.FinishedAt == 0 {
		t.Errorf("exited container has no finish time: %s", mustJSON(s))
	}
	if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	st, err = e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("stopped sandbox state = %v", st.Status.State)
	}
	if ips := e.allocatedIPs(); len(ips) != 0 {
		t.Errorf("stopped sandbox still holds IPs %v", ips)
	}
	if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid}); err == nil {
		t.Error("container still there after RemovePodSandbox")
	}
	e.assertNothingLeft()
}
