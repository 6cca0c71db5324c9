package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestFeaturesMounts checks read-write, read-only and host-to-container
// propagating binds inside a container, and that ContainerStatus lists
// them.
func TestFeaturesMounts(t *testing.T) {
	e := newEnv(t)
	rwDir, roDir, propDir := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(roDir, "hostfile"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(propDir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// HOST_TO_CONTAINER needs a source on a shared (or slave) mount, and
	// this host's / is private: propDir becomes a shared mount of its own.
	mountShared(t, propDir)

	mounts := []*runtimeapi.Mount{
		{ContainerPath: "/mnt/rw", HostPath: rwDir},
		{ContainerPath: "/mnt/ro", HostPath: roDir, Readonly: true},
		{ContainerPath: "/mnt/prop", HostPath: propDir, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	}
	pod, podID := e.startPod("mounts", nil)
	cfg := containerConfig("mounts", `echo from-container >/mnt/rw/written && echo rwwrite=ok || echo rwwrite=denied
echo "roread=$(cat /mnt/ro/hostfile)"
touch /mnt/ro/probe 2>/dev/null && echo rowrite=ok || echo rowrite=denied
echo ready=1
while [ ! -e /mnt/prop/sub/marker ]; do sleep 0.2; done
echo "propagated=$(cat /mnt/prop/sub/marker)"
grep -q " /mnt/prop/sub " /proc/self/mountinfo && echo submount=yes || echo submount=no
sleep 3600`)
	cfg.Mounts = mounts
	id := e.runContainer(podID, pod, cfg)
	kv := keyValues(e.waitOutput(id, "ready=1", 10*time.Second))

	if kv["rwwrite"] != "ok" {
		t.Errorf("write to the read-write bind: %s", kv["rwwrite"])
	}
	if b, err := os.ReadFile(filepath.Join(rwDir, "written")); err != nil || string(b) != "from-container\n" {
		t.Errorf("file written in the container reads on the host as %q, %v", b, err)
	}
	if kv["roread"] != "from-host" || kv["rowrite"] != "denied" {
		t.Errorf("read-only bind: read %q, write %s; want from-host and denied", kv["roread"], kv["rowrite"])
	}

	// A mount made on the host after the start shows up inside.
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", sub, err)
	}
	t.Cleanup(func() { unmount(t, sub) })
	if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("on-tmpfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	kv = keyValues(e.waitOutput(id, "submount=", 10*time.Second))
	if kv["propagated"] != "on-tmpfs" || kv["submount"] != "yes" {
		t.Errorf("host mount under the HOST_TO_CONTAINER bind: read %q, mount point seen %s", kv["propagated"], kv["submount"])
	}

	got := e.containerStatus(id).Mounts
	if len(got) != len(mounts) {
		t.Fatalf("ContainerStatus.mounts = %s, want %s", mustJSON(got), mustJSON(mounts))
	}
	for i := range mounts {
		if !proto.Equal(got[i], mounts[i]) {
			t.Errorf("ContainerStatus.mounts[%d] = %s, want %s", i, mustJSON(got[i]), mustJSON(mounts[i]))
		}
	}
}

// mountShared bind-mounts dir on itself as a shared mount, undone when the
// test ends.
func mountShared(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", dir, err)
	}
	t.Cleanup(func() { unmount(t, dir) })
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s shared: %v", dir, err)
	}
}

// unmount lazily unmounts path and checks it is no mount point any more.
func unmount(t *testing.T, path string) {
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil {
		t.Errorf("unmount %s: %v", path, err)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), " "+path+" ") {
		t.Errorf("%s is still a mount point", path)
	}
}
