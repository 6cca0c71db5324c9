package containerd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCRIEcho proves the harness: a pod sandbox on containerd's own network
// runs a busybox container whose output lands in the CRI log file, and
// everything is removed again.
func TestCRIEcho(t *testing.T) {
	rt, img := clients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	st, err := img.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: busybox}, false)
	if err != nil {
		t.Fatalf("image status %q: %v", busybox, err)
	}
	if st.GetImage() == nil {
		t.Fatalf("image %q not in containerd: hack/containerd.sh start did not import it", busybox)
	}

	logDir := t.TempDir()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: "echo", Namespace: "berth-containerd-test", Uid: fmt.Sprintf("echo-%d", time.Now().UnixNano()),
		},
		LogDirectory: logDir,
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	sandboxID, err := rt.RunPodSandbox(ctx, podCfg, "")
	if err != nil {
		t.Fatalf("run pod sandbox: %v", err)
	}
	removed := false
	t.Cleanup(func() {
		if removed {
			return
		}
		// A fresh context: the test's may be what ran out.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rt.StopPodSandbox(ctx, sandboxID)
		if err := rt.RemovePodSandbox(ctx, sandboxID); err != nil {
			t.Errorf("remove pod sandbox %q: %v", sandboxID, err)
		}
	})

	pst, err := rt.PodSandboxStatus(ctx, sandboxID, false)
	if err != nil {
		t.Fatalf("pod sandbox status %q: %v", sandboxID, err)
	}
	_, subnet, _ := net.ParseCIDR(podSubnet)
	if ip := net.ParseIP(pst.GetStatus().GetNetwork().GetIp()); ip == nil || !subnet.Contains(ip) {
		t.Errorf("pod IP %q, want one in containerd's own network %s", pst.GetStatus().GetNetwork().GetIp(), podSubnet)
	}

	ctrCfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "echo"},
		Image:    &runtimeapi.ImageSpec{Image: busybox},
		Command:  []string{"echo", "hello"},
		LogPath:  "echo.log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
	containerID, err := rt.CreateContainer(ctx, sandboxID, ctrCfg, podCfg)
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	if err := rt.StartContainer(ctx, containerID); err != nil {
		t.Fatalf("start container %q: %v", containerID, err)
	}
	status := waitExited(ctx, t, rt, containerID)
	if status.GetExitCode() != 0 {
		t.Errorf("exit code %d (reason %q, message %q), want 0", status.GetExitCode(), status.GetReason(), status.GetMessage())
	}

	got := readCRILog(ctx, t, filepath.Join(logDir, "echo.log"))
	want := []logLine{{Stream: "stdout", Tag: "F", Msg: "hello"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CRI log (-want +got):\n%s", diff)
	}

	if err := rt.StopPodSandbox(ctx, sandboxID); err != nil {
		t.Fatalf("stop pod sandbox %q: %v", sandboxID, err)
	}
	if err := rt.RemovePodSandbox(ctx, sandboxID); err != nil {
		t.Fatalf("remove pod sandbox %q: %v", sandboxID, err)
	}
	removed = true
	left, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: sandboxID})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	if len(left) != 0 {
		t.Errorf("%d containers left in removed sandbox %q", len(left), sandboxID)
	}
}

// waitExited polls until the container has exited.
func waitExited(ctx context.Context, t *testing.T, rt internalapi.RuntimeService, containerID string) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := rt.ContainerStatus(ctx, containerID, false)
		if err != nil {
			t.Fatalf("container status %q: %v", containerID, err)
		}
		if s := resp.GetStatus(); s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %q still %v after 30s", containerID, resp.GetStatus().GetState())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logLine is one CRI log line without its timestamp.
type logLine struct {
	Stream, Tag, Msg string
}

// readCRILog parses a CRI log file ("<RFC3339Nano> <stream> <P|F> <msg>").
// containerd may still be copying output when the exit is reported, so an
// empty file is read again for a moment.
func readCRILog(ctx context.Context, t *testing.T, path string) []logLine {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var data []byte
	for {
		var err error
		data, err = os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatalf("read CRI log: %v", err)
		}
		if len(data) > 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lines []logLine
	for _, raw := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if raw == "" {
			continue
		}
		f := strings.SplitN(raw, " ", 4)
		if len(f) != 4 {
			t.Fatalf("CRI log line %q: want 4 fields", raw)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("CRI log line %q: timestamp: %v", raw, err)
		}
		lines = append(lines, logLine{Stream: f[1], Tag: f[2], Msg: f[3]})
	}
	return lines
}
