package integration

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustGracefulShutdown: SIGTERM while a slow call is in flight lets
// the call finish successfully; berth stops accepting at once and exits 0.
func TestRobustGracefulShutdown(t *testing.T) {
	n := newCNINet(t, cniNetOptions{})
	b := newOwnBerth(t, berthOptions{Binary: true, CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})
	pod := b.podConfig("term")
	podID := b.runPod(pod)
	cid := b.runContainer(podID, pod, containerConfig("stubborn", "trap '' TERM; echo ready; while true; do sleep 1; done"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(dockerOutput(t, cid), "ready") {
		if time.Now().After(deadline) {
			t.Fatal("container did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	const stopTimeout = 3
	type result struct {
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	rt := b.rt
	go func() {
		start := time.Now()
		_, err := rt.StopContainer(context.Background(), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: stopTimeout})
		done <- result{err, time.Since(start)}
	}()
	// Let the call reach Docker, then ask berth to stop.
	time.Sleep(500 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("StopContainer returned before SIGTERM (%v after %v): the container does not ignore TERM", r.err, r.elapsed)
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: no new connection is accepted while the call runs.
	time.Sleep(300 * time.Millisecond)
	if c, err := net.Dial("unix", b.socket); err == nil {
		c.Close()
		t.Errorf("berth still accepts connections on %s while shutting down", b.socket)
	}

	select {
	case r := <-done:
		if r.err != nil {
			t.Errorf("in-flight StopContainer failed across SIGTERM: %v", r.err)
		}
		if r.elapsed < (stopTimeout-1)*time.Second {
			t.Errorf("StopContainer took %v: it did not wait for the %ds grace", r.elapsed, stopTimeout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("in-flight StopContainer did not complete within 20s of SIGTERM")
	}
	if err := b.waitExit(15 * time.Second); err != nil {
		t.Errorf("berth exit after SIGTERM: %v, want status 0", err)
	}
	b.conn.Close()
	b.running = false
	if c, err := net.Dial("unix", b.socket); err == nil {
		c.Close()
		t.Errorf("socket %s still accepts after berth exited", b.socket)
	}
	ins, err := theSuite.docker.ContainerInspect(context.Background(), cid, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.State.Running {
		t.Errorf("container still running after the completed StopContainer")
	}
	// Cleanup starts berth again and removes the pod.
}
