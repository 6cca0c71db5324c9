package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunDryRun: --dry-run prints the sandbox config and every container's
// config in start order, from the example manifest, and leaves the host
// alone: no runtime is contacted and no directory is made.
func TestRunDryRun(t *testing.T) {
	dir := t.TempDir()
	state, logs := filepath.Join(dir, "state"), filepath.Join(dir, "logs")
	var out, errOut bytes.Buffer
	cmd := NewRoot(&out, &errOut)
	cmd.SetArgs([]string{"run", "--dry-run", "--state-dir", state, "--pod-logs-dir", logs,
		"--runtime-endpoint", "unix:///nonexistent.sock", filepath.Join("..", "..", "examples", "hello-pod.yaml")})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("berth run --dry-run: %v\n%s", err, errOut.String())
	}
	got := out.String()
	var order []int
	for _, want := range []string{"# RunPodSandbox", "# CreateContainer prepare", "# CreateContainer heartbeat", "# CreateContainer writer", "# CreateContainer reader"} {
		i := strings.Index(got, want)
		if i < 0 {
			t.Fatalf("no %q in:\n%s", want, got)
		}
		order = append(order, i)
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Errorf("configs out of start order:\n%s", got)
		}
	}
	// $(GREETING) is expanded from the ConfigMap; the reader's limits are
	// the kubelet's numbers (500m → quota 50000, 100m → 102 shares).
	// protojson varies its spacing on purpose: compare without it.
	flat := strings.Join(strings.Fields(got), "")
	for _, want := range []string{`"Hello,$AUDIENCE`, `"cpuQuota":"50000"`, `"cpuShares":"102"`, `"logDirectory":"` + logs + `/default_hello_`} {
		if !strings.Contains(flat, want) {
			t.Errorf("no %s in the dry run's output", want)
		}
	}
	for _, p := range []string{state, logs} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a dry run (%v)", p, err)
		}
	}
}

func TestRunBadManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(path, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    imagee: busybox\n"), 0o644)
	var out, errOut bytes.Buffer
	cmd := NewRoot(&out, &errOut)
	cmd.SetArgs([]string{"run", "--dry-run", path})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), `unknown field "imagee"`) {
		t.Errorf("berth run of a misspelt field = %v, want an error naming it", err)
	}
}
