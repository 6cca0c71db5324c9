package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustRestartKeepsPods: a restarted berth lists and serves every
// sandbox and container it made before, with the same ids, states, IPs,
// labels, annotations and metadata; Stop and Remove then leave nothing.
func TestRobustRestartKeepsPods(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	type made struct {
		podID, cid string
		pod        *runtimeapi.PodSandboxConfig
		status     *runtimeapi.PodSandboxStatus
		ctr        *runtimeapi.ContainerStatus
	}
	var pods []made
	for i := range 2 {
		pod := e.podConfig(fmt.Sprintf("keep%d", i))
		pod.Metadata.Attempt = uint32(i + 1)
		pod.Labels["app"] = fmt.Sprintf("app-%d", i)
		pod.Annotations = map[string]string{"robust/annotation": fmt.Sprintf("value %d", i), "empty": ""}
		podID := e.runPod(pod)
		ccfg := containerConfig("main", "sleep 3600")
		ccfg.Annotations = map[string]string{"ctr": fmt.Sprint(i)}
		cid := e.runContainer(podID, pod, ccfg)
		st, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.GetNetwork().GetIp() == "" {
			t.Fatalf("pod %d has no IP: %s", i, mustJSON(st.Status))
		}
		cs, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, made{podID: podID, cid: cid, pod: pod, status: st.Status, ctr: cs.Status})
	}
	if pods[0].status.Network.Ip == pods[1].status.Network.Ip {
		t.Fatalf("both pods have IP %s", pods[0].status.Network.Ip)
	}
	ipsBefore := e.allocatedIPs()

	e.restart()
	ctx = e.ctx()

	list, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"test": sanitize(t.Name())},
	}})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]*runtimeapi.PodSandbox{}
	for _, p := range list.Items {
		listed[p.Id] = p
	}
	ctrs, err := e.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	listedCtrs := map[string]*runtimeapi.Container{}
	for _, c := range ctrs.Containers {
		listedCtrs[c.Id] = c
	}
	for i, m := range pods {
		p := listed[m.podID]
		if p == nil {
			t.Errorf("pod %d (%s) not listed after restart", i, m.podID)
			continue
		}
		if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %d listed %v after restart", i, p.State)
		}
		if d := cmp.Diff(m.status.Metadata, p.Metadata, protocmp.Transform()); d != "" {
			t.Errorf("pod %d listed metadata (-before +after):\n%s", i, d)
		}
		if d := cmp.Diff(m.pod.Labels, p.Labels); d != "" {
			t.Errorf("pod %d listed labels (-sent +after):\n%s", i, d)
		}
		if d := cmp.Diff(m.pod.Annotations, p.Annotations); d != "" {
			t.Errorf("pod %d listed annotations (-sent +after):\n%s", i, d)
		}

		st, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: m.podID})
		if err != nil {
			t.Errorf("pod %d status after restart: %v", i, err)
			continue
		}
		if d := cmp.Diff(m.status, st.Status, protocmp.Transform()); d != "" {
			t.Errorf("pod %d status changed by the restart (-before +after):\n%s", i, d)
		}
		if st.Status.GetNetwork().GetIp() != m.status.Network.Ip || st.Status.Metadata.GetAttempt() != uint32(i+1) {
			t.Errorf("pod %d after restart: ip %q attempt %d, want %q %d", i, st.Status.GetNetwork().GetIp(),
				st.Status.Metadata.GetAttempt(), m.status.Network.Ip, i+1)
		}

		c := listedCtrs[m.cid]
		if c == nil {
			t.Errorf("container of pod %d (%s) not listed after restart", i, m.cid)
			continue
		}
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING || c.PodSandboxId != m.podID {
			t.Errorf("container of pod %d listed as %s", i, mustJSON(c))
		}
		cs, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: m.cid})
		if err != nil {
			t.Errorf("container of pod %d status after restart: %v", i, err)
			continue
		}
		if d := cmp.Diff(m.ctr, cs.Status, protocmp.Transform()); d != "" {
			t.Errorf("container of pod %d status changed by the restart (-before +after):\n%s", i, d)
		}
	}
	if ips := e.allocatedIPs(); !cmp.Equal(ips, ipsBefore) {
		t.Errorf("IP allocations %v after restart, %v before", ips, ipsBefore)
	}

	// The restarted berth serves them: a new container joins the first
	// pod's network, and resources can be updated.
	late := e.runContainer(pods[0].podID, pods[0].pod, containerConfig("late", "ip -4 addr show eth0; sleep 3600"))
	if out := e.waitOutput(late, "inet ", 10*time.Second); !strings.Contains(out, "inet "+pods[0].status.Network.Ip+"/") {
		t.Errorf("container created after the restart sees eth0 as:\n%s\nwant the sandbox IP %s", out, pods[0].status.Network.Ip)
	}
	if _, err := e.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: pods[1].cid,
		Linux: &runtimeapi.LinuxContainerResources{CpuShares: 256}}); err != nil {
		t.Errorf("UpdateContainerResources after restart: %v", err)
	}

	// The restarted berth can still drive them to the end.
	for i, m := range pods {
		if _, err := e.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: m.cid, Timeout: 1}); err != nil {
			t.Errorf("StopContainer of pod %d: %v", i, err)
		}
		e.waitExit(m.cid, 10*time.Second)
		if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: m.podID}); err != nil {
			t.Errorf("StopPodSandbox %d: %v", i, err)
		}
		if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: m.podID}); err != nil {
			t.Errorf("RemovePodSandbox %d: %v", i, err)
		}
	}
	e.assertNothingLeft()
}
