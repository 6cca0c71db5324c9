package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// forT is e acting for the subtest t: failures and contexts belong to t.
// Make pod configs with the parent's podConfig, not the copy's (whose
// label would name the subtest, which no cleanup looks for): the parent's
// cleanup then removes and leak-checks them.
func (e *env) forT(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// startPod runs a sandbox made from the test's podConfig, changed by edit
// (which may be nil), and returns its config and id.
func (e *env) startPod(name string, edit func(*runtimeapi.PodSandboxConfig)) (*runtimeapi.PodSandboxConfig, string) {
	e.t.Helper()
	cfg := e.podConfig(name)
	if edit != nil {
		edit(cfg)
	}
	return cfg, e.runPod(cfg)
}

// runToExit runs a container to its end and returns its status and output.
func (e *env) runToExit(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (*runtimeapi.ContainerStatus, string) {
	e.t.Helper()
	id := e.runContainer(podID, pod, cfg)
	st := e.waitExit(id, 30*time.Second)
	return st, e.output(id)
}

// containerStatus is ContainerStatus of id, failing the test on error.
func (e *env) containerStatus(id string) *runtimeapi.ContainerStatus {
	e.t.Helper()
	r, err := e.rt.ContainerStatus(e.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		e.t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return r.Status
}

// podStatus is PodSandboxStatus of id, failing the test on error.
func (e *env) podStatus(id string) *runtimeapi.PodSandboxStatus {
	e.t.Helper()
	r, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		e.t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	return r.Status
}

// keyValues reads the "key=value" lines of a container's output, values
// trimmed; later lines win. Keys are words: the echo of a script line is
// no key.
func keyValues(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-") == "" {
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv
}

// statusField is the value of a "Name:\tvalue" line of /proc/<pid>/status
// as a container printed it, "" if absent.
func statusField(out, name string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// hexField parses a hex status field such as CapEff.
func hexField(t *testing.T, out, name string) uint64 {
	t.Helper()
	v := statusField(out, name)
	n, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		t.Fatalf("%s in\n%s\nis %q: %v", name, out, v, err)
	}
	return n
}

// hostBoundingSet is this host's capability bounding set (the test runs
// as root on the host, like dockerd).
func hostBoundingSet(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return hexField(t, string(b), "CapBnd")
}

// Capability bits.
const (
	capNetBindService = 10
	capNetAdmin       = 12
	capSysResource    = 24
)

// dockerDefaultCaps is the capability set Docker gives a container.
const dockerDefaultCaps uint64 = 0xa80425fb

// freePort is a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// requireSuite skips or fails t as newEnv does when the suite is not set
// up.
func requireSuite(t *testing.T) {
	t.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		t.Skip("integration test: set BERTH_INTEGRATION=1 (make test-integration)")
	}
	if setupErr != nil {
		t.Fatalf("integration prerequisites: %v", setupErr)
	}
}

// buildImage builds ref from a Dockerfile with Docker's classic builder
// (no network needed for FROM a local image) and removes it when the test
// ends. Call it before newEnv: cleanups run last-in first-out, so the
// image then goes after the pods that use it.
func buildImage(t *testing.T, ref, dockerfile string) {
	t.Helper()
	requireSuite(t)
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(dockerfile)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	res, err := theSuite.docker.ImageBuild(ctx, &ctxTar, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("build %s: %v", ref, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if _, err := theSuite.docker.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("build %s: %v\n%s", ref, err, body)
	}
	t.Cleanup(func() { removeImage(t, ref) })
}

// removeImage removes ref from Docker if it is still there.
func removeImage(t *testing.T, ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := theSuite.docker.ImageInspect(ctx, ref); err != nil {
		return
	}
	if _, err := theSuite.docker.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		t.Errorf("remove image %s: %v", ref, err)
	}
}

// dialable reports whether a TCP connection to addr succeeds within a
// second.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// capNames are the capabilities by bit, as Linux numbers them.
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// capList names the bits of set.
func capList(set uint64) []string {
	var names []string
	for i := range 64 {
		if set&(1<<i) == 0 {
			continue
		}
		if i < len(capNames) {
			names = append(names, capNames[i])
		} else {
			names = append(names, fmt.Sprintf("cap%d", i))
		}
	}
	return names
}

// dockerGrantable is the part of set this dockerd can give a container:
// an older Engine (Debian's 20.10) refuses capabilities newer than its
// own list ("unknown capability") whatever the kernel has. It asks by
// creating (never starting) a container per capability.
func dockerGrantable(t *testing.T, set uint64) uint64 {
	t.Helper()
	ctx := t.Context()
	var out uint64
	for i, name := range capNames {
		if set&(1<<i) == 0 {
			continue
		}
		res, err := theSuite.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: busybox, Labels: map[string]string{testLabel: "true"}},
			HostConfig: &container.HostConfig{CapAdd: []string{name}},
		})
		switch {
		case err != nil && strings.Contains(err.Error(), "unknown capability"):
			continue
		case err != nil:
			t.Fatalf("probe %s: %v", name, err)
		}
		if _, err := theSuite.docker.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatalf("remove probe container: %v", err)
		}
		out |= 1 << i
	}
	return out
}

// rawOutput is a TTY container's output: Docker does not multiplex a
// terminal's stream.
func (e *env) rawOutput(id string) string {
	e.t.Helper()
	rc, err := e.s.docker.ContainerLogs(e.ctx(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		e.t.Fatalf("docker logs %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatalf("docker logs %s: %v", id, err)
	}
	return string(b)
}

// containerIDs are the sorted ids of cs.
func containerIDs(cs []*runtimeapi.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Id)
	}
	slices.Sort(out)
	return out
}

// sandboxIDs are the sorted ids of ps.
func sandboxIDs(ps []*runtimeapi.PodSandbox) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Id)
	}
	slices.Sort(out)
	return out
}

// sorted returns ids sorted, nil for none.
func sorted(ids ...string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
