package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustCrashDuringRunPodSandbox kills the berth binary (SIGKILL) in
// the middle of RunPodSandbox and starts it again on the same root: the
// half-made sandbox is never READY, shows no IP, and Stop + Remove clean
// it up completely (container, sandbox dir, IP allocation, veth).
func TestRobustCrashDuringRunPodSandbox(t *testing.T) {
	t.Run("at slow CNI plugin", testCrashAtSlowPlugin)
	t.Run("after pause created", func(t *testing.T) {
		testCrashAtDocker(t, cutExpect{containerState: "created"}, onCreate("k8s_POD_", holdAfter))
	})
	t.Run("before pause started", func(t *testing.T) {
		testCrashAtDocker(t, cutExpect{containerState: "created", sandboxDir: true}, onStart(holdBefore))
	})
	t.Run("after pause started", func(t *testing.T) {
		testCrashAtDocker(t, cutExpect{containerState: "running", sandboxDir: true}, onInspectAfterStart(holdBefore))
	})
}

// runPodAsync calls RunPodSandbox in the background.
func (b *ownBerth) runPodAsync(cfg *runtimeapi.PodSandboxConfig) <-chan error {
	rt := b.rt
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		done <- err
	}()
	return done
}

// assertCutPod checks the sandbox of uid, cut short by a crash: listed
// once, NOTREADY, and without an IP in ListPodSandbox or PodSandboxStatus.
// It returns its id.
func assertCutPod(t *testing.T, b *ownBerth, uid string) string {
	t.Helper()
	var found []*runtimeapi.PodSandbox
	for _, p := range b.pods() {
		if p.Metadata.GetUid() == uid {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d sandboxes of uid %s listed after the crash: %s", len(found), uid, mustJSON(found))
	}
	p := found[0]
	if p.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("sandbox %s cut short is listed %v", p.Id[:12], p.State)
	}
	st, err := b.rt.PodSandboxStatus(b.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.Id})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", p.Id[:12], err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.GetNetwork().GetIp() != "" ||
		len(st.Status.GetNetwork().GetAdditionalIps()) != 0 {
		t.Errorf("sandbox %s cut short: status %s, want NOTREADY without IP", p.Id[:12], mustJSON(st.Status))
	}
	return p.Id
}

// removeCutPods stops and removes sandboxes through berth and checks
// nothing of them is left.
func removeCutPods(t *testing.T, b *ownBerth, n *cniNet, ids []string) {
	t.Helper()
	for _, id := range ids {
		if _, err := b.rt.StopPodSandbox(b.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("StopPodSandbox %s: %v", id[:12], err)
		}
		if _, err := b.rt.RemovePodSandbox(b.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox %s: %v", id[:12], err)
		}
	}
	if ids := labelledContainers(t, b.label); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	if dirs := b.sandboxDirs(); len(dirs) != 0 {
		t.Errorf("sandbox dirs left: %v", dirs)
	}
	if ips := n.allocatedIPs(); len(ips) != 0 {
		t.Errorf("IP allocations left in %s: %v", n.dataDir, ips)
	}
	if ports := n.ports(); len(ports) != 0 {
		t.Errorf("veths left on %s: %v", n.bridge, ports)
	}
	if pods := b.pods(); len(pods) != 0 {
		t.Errorf("sandboxes still listed: %s", mustJSON(pods))
	}
}

// testCrashAtSlowPlugin cuts RunPodSandbox while a CNI plugin chained
// after bridge sleeps: bridge has made the veth and host-local has
// allocated the address, and the CNI result is not cached yet. Five pods
// are cut that way, berth restarting after each.
func testCrashAtSlowPlugin(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatalf("the slow test plugin needs jq: %v", err)
	}
	marks := shortTempDir(t)
	n := newCNINet(t, cniNetOptions{Plugins: []string{`{"type":"robust-slow"}`}})
	n.addPlugin("robust-slow", slowPlugin(marks, 5*time.Second))
	b := newOwnBerth(t, berthOptions{Binary: true, CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})

	const rounds = 5
	var uids []string
	for i := range rounds {
		cfg := b.podConfig(fmt.Sprintf("cut%d", i))
		uids = append(uids, cfg.Metadata.Uid)
		done := b.runPodAsync(cfg)
		id, pluginPid := waitMark(t, marks, i)
		b.kill()
		if pluginPid > 0 {
			syscall.Kill(pluginPid, syscall.SIGKILL)
		}
		if err := <-done; err == nil {
			t.Fatalf("round %d: RunPodSandbox succeeded although berth was killed in it", i)
		}
		// Evidence of where the cut fell: the address and the veth exist.
		if ips := n.allocatedIPs(); len(ips) != i+1 {
			t.Errorf("round %d: allocations %v at the cut, want %d", i, ips, i+1)
		}
		if ports := n.ports(); len(ports) != i+1 {
			t.Errorf("round %d: veths %v at the cut, want %d", i, ports, i+1)
		}
		if _, err := os.Stat(filepath.Join(b.root, "sandboxes", id)); err != nil {
			t.Errorf("round %d: sandbox dir of %s: %v", i, id[:12], err)
		}

		// The restarted berth serves the next round.
		b.start()
		for _, uid := range uids {
			assertCutPod(t, b, uid)
		}
		for _, p := range b.pods() {
			if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				t.Errorf("round %d: sandbox %s is READY", i, p.Id[:12])
			}
		}
	}
	var ids []string
	for _, uid := range uids {
		ids = append(ids, assertCutPod(t, b, uid))
	}
	removeCutPods(t, b, n, ids)
}

// waitMark waits for the slow plugin's ADD of round i (its i+1th mark)
// and returns the sandbox id and the plugin's pid.
func waitMark(t *testing.T, dir string, i int) (string, int) {
	t.Helper()
	return waitMarkOf(t, dir, "add-", i)
}

// waitMarkOf waits for the i+1th mark named prefix<sandbox id> and
// returns the sandbox id and the pid in the newest one.
func waitMarkOf(t *testing.T, dir, prefix string, i int) (string, int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		matches, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
		if len(matches) > i {
			// The newest mark is this round's.
			var newest string
			var newestTime time.Time
			for _, m := range matches {
				if fi, err := os.Stat(m); err == nil && fi.ModTime().After(newestTime) {
					newest, newestTime = m, fi.ModTime()
				}
			}
			b, _ := os.ReadFile(newest)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid > 0 {
				return strings.TrimPrefix(filepath.Base(newest), prefix), pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow plugin's %s#%d did not start within 30s", prefix, i+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cutExpect is the state a cut through the Docker proxy leaves.
type cutExpect struct {
	containerState string // the pause container's Docker state
	sandboxDir     bool   // the checkpoint was written
}

// testCrashAtDocker runs berth's Docker calls through a proxy that holds
// the call rule picks, kills berth there, and restarts it on the real
// dockerd.
func testCrashAtDocker(t *testing.T, want cutExpect, rule func(*http.Request) holdMode) {
	p := newDockerProxy(t)
	n := newCNINet(t, cniNetOptions{})
	b := newOwnBerth(t, berthOptions{Binary: true, DockerHost: p.host(), CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})
	p.arm(rule)
	cfg := b.podConfig("cut")
	done := b.runPodAsync(cfg)
	select {
	case call := <-p.held:
		t.Logf("holding %s", call)
	case err := <-done:
		t.Fatalf("RunPodSandbox ended (%v) before the proxy held a call", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy held no call within 30s")
	}
	b.kill()
	if err := <-done; err == nil {
		t.Fatal("RunPodSandbox succeeded although berth was killed in it")
	}

	// Evidence of where the cut fell.
	ids := labelledContainers(t, b.label)
	if len(ids) != 1 {
		t.Fatalf("%d pause containers after the cut, want 1", len(ids))
	}
	ins, err := theSuite.docker.ContainerInspect(context.Background(), ids[0], client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ins.Container.State.Status); got != want.containerState {
		t.Errorf("pause container %s at the cut, want %s", got, want.containerState)
	}
	if _, err := os.Stat(filepath.Join(b.root, "sandboxes", ids[0])); (err == nil) != want.sandboxDir {
		t.Errorf("sandbox dir at the cut: %v, want it present: %t", err, want.sandboxDir)
	}
	if ips := n.allocatedIPs(); len(ips) != 0 {
		t.Errorf("allocations at the cut: %v (the network was not set up yet)", ips)
	}

	b.opts.DockerHost = ""
	b.start()
	id := assertCutPod(t, b, cfg.Metadata.Uid)
	if id != ids[0] {
		t.Errorf("listed sandbox %s, Docker has %s", id, ids[0])
	}
	removeCutPods(t, b, n, []string{id})
}

// TestRobustCrashDuringStopPodSandbox kills berth while StopPodSandbox
// tears the network down: bridge's DEL has released the address and the
// veth, and a plugin before it in the chain (so after it on DEL) is still
// running. After the restart the sandbox must not be READY with an
// address it no longer holds; Stop and Remove then finish the job.
func TestRobustCrashDuringStopPodSandbox(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatalf("the slow test plugin needs jq: %v", err)
	}
	marks := shortTempDir(t)
	n := newCNINet(t, cniNetOptions{PluginsBefore: []string{`{"type":"robust-slow-del"}`}})
	n.addPlugin("robust-slow-del", slowDelPlugin(marks, 5*time.Second))
	b := newOwnBerth(t, berthOptions{Binary: true, CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})
	pod := b.podConfig("stopcut")
	podID := b.runPod(pod)
	b.runContainer(podID, pod, containerConfig("main", "sleep 3600"))
	st, err := b.rt.PodSandboxStatus(b.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	ip := st.Status.GetNetwork().GetIp()
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || ip == "" {
		t.Fatalf("pod before the cut: %s", mustJSON(st.Status))
	}

	rt := b.rt
	done := make(chan error, 1)
	go func() {
		_, err := rt.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
		done <- err
	}()
	_, pluginPid := waitMarkOf(t, marks, "del-", 0)
	b.kill()
	if pluginPid > 0 {
		syscall.Kill(pluginPid, syscall.SIGKILL)
	}
	if err := <-done; err == nil {
		t.Fatal("StopPodSandbox succeeded although berth was killed in it")
	}
	// Evidence of where the cut fell: the pod network is gone.
	if ips := n.allocatedIPs(); len(ips) != 0 {
		t.Errorf("allocations at the cut: %v, want none (bridge DEL done)", ips)
	}
	if ports := n.ports(); len(ports) != 0 {
		t.Errorf("veths at the cut: %v, want none", ports)
	}

	b.start()
	st, err = b.rt.PodSandboxStatus(b.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox whose network was torn down is READY after the restart, reporting IP %q that host-local has released (allocations %v)",
			st.Status.GetNetwork().GetIp(), n.allocatedIPs())
	}
	for _, p := range b.pods() {
		if p.Id == podID && p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("ListPodSandbox: sandbox without network listed READY")
		}
	}
	removeCutPods(t, b, n, []string{podID})
}
