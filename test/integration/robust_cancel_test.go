package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustCancelledCalls: a RunPodSandbox or CreateContainer that fails
// because its caller gave up (the kubelet's deadline) is a failed call
// like any other and leaves nothing behind, wherever it was cut: Docker
// carries a create out even when the client has gone.
func TestRobustCancelledCalls(t *testing.T) {
	t.Run("RunPodSandbox at pause create", func(t *testing.T) {
		testCancelledRunPod(t, onCreate("k8s_POD_", holdAfter), false)
	})
	t.Run("RunPodSandbox at pause start", func(t *testing.T) {
		testCancelledRunPod(t, onStart(holdAfter), false)
	})
	t.Run("RunPodSandbox at slow CNI plugin", func(t *testing.T) {
		testCancelledRunPod(t, nil, true)
	})
	t.Run("CreateContainer at create", func(t *testing.T) {
		p := newDockerProxy(t)
		n := newCNINet(t, cniNetOptions{})
		b := newOwnBerth(t, berthOptions{DockerHost: p.host(), CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})
		pod := b.podConfig("cancelctr")
		podID := b.runPod(pod)
		before := labelledContainers(t, b.label)
		p.arm(onCreate("k8s_late_", holdAfter))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := b.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID,
			Config: containerConfig("late", "sleep 3600"), SandboxConfig: pod})
		assertHeldAndCancelled(t, p, err)
		left := waitFor(5*time.Second, func() string {
			if after := labelledContainers(t, b.label); len(after) != len(before) {
				return fmt.Sprintf("containers %v, before the call %v", after, before)
			}
			return ""
		})
		if left != "" {
			t.Errorf("cancelled CreateContainer left %s", left)
		}
		ctrs, err := b.rt.ListContainers(b.ctx(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ctrs.Containers) != 0 {
			t.Errorf("ListContainers after the cancelled create: %s", mustJSON(ctrs.Containers))
		}
	})
}

// testCancelledRunPod gives RunPodSandbox a 2s deadline and makes it
// expire where rule holds a Docker call (or, with slow, in a CNI plugin
// that sleeps), then checks nothing is left.
func testCancelledRunPod(t *testing.T, rule func(*http.Request) holdMode, slow bool) {
	var opts cniNetOptions
	if slow {
		opts.Plugins = []string{`{"type":"robust-slow"}`}
	}
	n := newCNINet(t, opts)
	marks := shortTempDir(t)
	if slow {
		n.addPlugin("robust-slow", slowPlugin(marks, 5*time.Second))
	}
	bo := berthOptions{CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()}
	var p *dockerProxy
	if rule != nil {
		p = newDockerProxy(t)
		bo.DockerHost = p.host()
	}
	b := newOwnBerth(t, bo)
	if p != nil {
		p.arm(rule)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: b.podConfig("cancelled")})
	if p != nil {
		assertHeldAndCancelled(t, p, err)
	} else {
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("RunPodSandbox: %v, want DeadlineExceeded", err)
		}
		waitMark(t, marks, 0)
	}
	left := waitFor(5*time.Second, func() string {
		var left []string
		if ids := labelledContainers(t, b.label); len(ids) != 0 {
			left = append(left, fmt.Sprintf("containers %v", ids))
		}
		if dirs := b.sandboxDirs(); len(dirs) != 0 {
			left = append(left, fmt.Sprintf("sandbox dirs %v", dirs))
		}
		if ips := n.allocatedIPs(); len(ips) != 0 {
			left = append(left, fmt.Sprintf("IP allocations %v", ips))
		}
		if ports := n.ports(); len(ports) != 0 {
			left = append(left, fmt.Sprintf("veths %v", ports))
		}
		return strings.Join(left, ", ")
	})
	if left != "" {
		t.Errorf("cancelled RunPodSandbox left %s", left)
	}
}

// assertHeldAndCancelled checks the proxy held a call and the caller's
// deadline ended the CRI call.
func assertHeldAndCancelled(t *testing.T, p *dockerProxy, err error) {
	t.Helper()
	select {
	case call := <-p.held:
		t.Logf("held %s", call)
	default:
		t.Fatalf("the proxy held no call; the CRI call returned %v", err)
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("CRI call: %v, want DeadlineExceeded", err)
	}
}
