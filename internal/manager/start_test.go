package manager

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestRestartCount: one more than the runtime's last attempt; when the
// runtime lost every attempt, one more than the newest log file left.
func TestRestartCount(t *testing.T) {
	h := newFakeHost(t, time.Second)
	pod := testManifest(corev1.RestartPolicyAlways)
	if got := h.m.restartCount(pod, &containerStatus{Attempt: 4}, "app"); got != 5 {
		t.Errorf("after attempt 4: %d, want 5", got)
	}
	if got := h.m.restartCount(pod, nil, "app"); got != 0 {
		t.Errorf("no attempt, no logs: %d, want 0", got)
	}
	dir := filepath.Join(h.m.opts.PodLogsDir, podLogDirName(pod), "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0.log", "2.log", "10.log", "3.log.20261126-101010", "x.log"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.m.restartCount(pod, nil, "app"); got != 11 {
		t.Errorf("logs up to 10.log: %d, want 11", got)
	}
}
