// Package containerd_test runs tests against Debian's containerd and its CRI
// plugin, a CRI runtime other than berth, started by hack/containerd.sh on
// a socket and root of its own. It runs with BERTH_INTEGRATION=1 as root,
// after hack/setup.sh; without the variable every test skips, and with it a
// containerd that does not start fails the run.
package containerd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
)

const (
	busybox = "berth.local/busybox:1.36"
	// podSubnet is the network of hack/containerd.sh's CNI config; keep the
	// two in step.
	podSubnet = "10.90.0.0/16"
)

// harness is what TestMain prepared: a running containerd and its endpoint.
type harness struct {
	script   string
	endpoint string
	// started is false when a containerd was already running: TestMain then
	// leaves it running, as it is someone else's.
	started bool
}

var (
	theHarness *harness
	setupErr   error
)

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		os.Exit(m.Run())
	}
	theHarness, setupErr = startHarness()
	code := m.Run()
	if theHarness != nil && theHarness.started {
		if out, err := theHarness.run("stop"); err != nil {
			fmt.Fprintf(os.Stderr, "hack/containerd.sh stop: %v\n%s", err, out)
			code = 1
		}
	}
	os.Exit(code)
}

func startHarness() (*harness, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("containerd tests need root")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "hack", "containerd.sh"))
	if err != nil {
		return nil, fmt.Errorf("find hack/containerd.sh: %w", err)
	}
	h := &harness{script: script}
	if _, err := h.run("status"); err != nil {
		t0 := time.Now()
		out, err := h.run("start")
		if err != nil {
			// A half-started containerd is ours to clean up.
			h.run("stop")
			return nil, fmt.Errorf("hack/containerd.sh start: %w\n%s", err, out)
		}
		h.started = true
		fmt.Fprintf(os.Stderr, "%s(took %s)\n", out, time.Since(t0).Round(time.Millisecond))
	}
	out, err := h.run("env")
	if err != nil {
		return h, fmt.Errorf("hack/containerd.sh env: %w\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "CONTAINERD_ENDPOINT="); ok {
			h.endpoint = v
		}
	}
	if h.endpoint == "" {
		return h, fmt.Errorf("hack/containerd.sh env printed no CONTAINERD_ENDPOINT: %q", out)
	}
	return h, nil
}

// run runs the script with one subcommand and returns its combined output.
func (h *harness) run(cmd string) (string, error) {
	var out bytes.Buffer
	c := exec.Command("bash", h.script, cmd)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

// clients connects a test to containerd's CRI through cri-client, as the
// kubelet and `berth run` do; the connections close with the test.
func clients(t *testing.T) (internalapi.RuntimeService, internalapi.ImageManagerService) {
	t.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		t.Skip("integration test: set BERTH_INTEGRATION=1 (make test-integration)")
	}
	if setupErr != nil {
		t.Fatalf("containerd prerequisites: %v", setupErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// containerd 1.6 has no streaming list RPCs; say so rather than rely on
	// the client's fallback.
	rt, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint(theHarness.endpoint).
		WithConnectionTimeout(time.Minute).WithUseStreaming(false).Build(ctx)
	if err != nil {
		t.Fatalf("connect runtime service %s: %v", theHarness.endpoint, err)
	}
	img, err := criclient.NewRemoteImageServiceBuilder().WithEndpoint(theHarness.endpoint).
		WithConnectionTimeout(time.Minute).WithUseStreaming(false).Build(ctx)
	if err != nil {
		rt.Close(ctx)
		t.Fatalf("connect image service %s: %v", theHarness.endpoint, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		rt.Close(ctx)
		img.Close(ctx)
	})
	return rt, img
}
