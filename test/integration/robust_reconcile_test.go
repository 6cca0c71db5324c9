package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustOrphanedCheckpoint: a sandbox whose pause container was
// removed behind berth's back while berth was down is cleaned up at the
// next start (directory removed, IP released); a healthy sandbox next to
// it is left alone.
func TestRobustOrphanedCheckpoint(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	orphan := e.runPod(e.podConfig("orphan"))
	healthy := e.runPod(e.podConfig("healthy"))
	status := func(id string) *runtimeapi.PodSandboxStatus {
		t.Helper()
		st, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}
	orphanIP, healthyIP := status(orphan).GetNetwork().GetIp(), status(healthy).GetNetwork().GetIp()
	if ips := e.allocatedIPs(); !slices.Contains(ips, orphanIP) || !slices.Contains(ips, healthyIP) {
		t.Fatalf("allocations %v lack the pods' %s and %s", ips, orphanIP, healthyIP)
	}
	orphanDir := filepath.Join(e.root, "sandboxes", orphan)
	if _, err := os.Stat(orphanDir); err != nil {
		t.Fatalf("sandbox dir: %v", err)
	}

	hasCache := func(id string) bool {
		return slices.ContainsFunc(cacheEntries(e.root), func(p string) bool { return strings.Contains(p, id) })
	}
	if !hasCache(orphan) {
		t.Fatalf("no CNI cache entry for %s in %v", orphan, cacheEntries(e.root))
	}

	e.stop()
	if _, err := e.s.docker.ContainerRemove(ctx, orphan, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatalf("docker rm -f %s: %v", orphan, err)
	}
	e.start()

	if _, err := os.Stat(orphanDir); !os.IsNotExist(err) {
		t.Errorf("orphaned sandbox dir %s still there after start (stat: %v)", orphanDir, err)
	}
	if ips := e.allocatedIPs(); slices.Contains(ips, orphanIP) {
		t.Errorf("orphan's IP %s still allocated after start: %v", orphanIP, ips)
	}
	if hasCache(orphan) {
		t.Errorf("orphan's CNI cache entries left: %v", cacheEntries(e.root))
	}
	st := status(healthy)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() != healthyIP {
		t.Errorf("healthy pod after start = %s, want READY with %s", mustJSON(st), healthyIP)
	}
	if ips := e.allocatedIPs(); !slices.Contains(ips, healthyIP) {
		t.Errorf("healthy pod's IP %s released: %v", healthyIP, ips)
	}
	if _, err := os.Stat(filepath.Join(e.root, "sandboxes", healthy)); err != nil {
		t.Errorf("healthy sandbox dir: %v", err)
	}
	list, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: orphan}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("orphan listed: %s", mustJSON(list.Items))
	}
}
