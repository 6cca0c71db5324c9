package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRunKilledThenAdopted: berth run is SIGKILLed while its pod runs.
// The pod keeps running; running the same manifest again finds it (the
// UID is the manifest's hash), adopts the running container instead of
// starting a second pod, and Ctrl-C then stops it. A second run of the
// same manifest at the same time is refused.
func TestRunKilledThenAdopted(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	manifest := strings.ReplaceAll(`apiVersion: v1
kind: Pod
metadata: {name: survivor, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: `+busybox+`
    command: [sh, -c, "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done"]
`, "{{TEST}}", sanitize(t.Name()))
	path := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", path, "--runtime-endpoint", "unix://" + e.socket,
		"--pod-logs-dir", filepath.Join(dir, "pods"), "--container-logs-dir", "",
		"--state-dir", filepath.Join(dir, "state")}
	first := exec.Command(berthBinary(t), args...)
	out := &syncBuffer{}
	first.Stdout, first.Stderr = out, out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "[app] tick-3") {
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatalf("first run never printed tick-3:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	running := e.runningContainers("app")
	if len(running) != 1 {
		t.Fatalf("after killing berth run: %d running app containers, want the 1 it left", len(running))
	}

	r := e.startRun(manifest, "--pod-logs-dir", filepath.Join(dir, "pods"), "--state-dir", filepath.Join(dir, "state"))
	r.waitOutput("Adopted", time.Minute)
	r.waitOutput("[app] tick-", time.Minute)
	if got := e.runningContainers("app"); len(got) != 1 || got[0] != running[0] {
		t.Errorf("after the second run started: running %v, want the same container %s", got, running[0])
	}
	if n := strings.Count(r.out.String(), "Started container app"); n != 0 {
		t.Errorf("the second run started app %d times, want 0 (adopted)", n)
	}

	// A third run of the same manifest, while the second holds it.
	third := exec.Command(berthBinary(t), args...)
	b, err := third.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "is being run by another berth run") {
		t.Errorf("a concurrent run of the same pod: %v\n%s", err, b)
	}

	r.stop(time.Minute)
	if got := e.runningContainers("app"); len(got) != 0 {
		t.Errorf("after Ctrl-C: %d app containers still running", len(got))
	}
}

// runningContainers lists the IDs of running containers named name in
// this test's pods.
func (e *env) runningContainers(name string) []string {
	e.t.Helper()
	list, err := e.rt.ListContainers(e.ctx(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Containers {
		if c.Metadata.Name == name && c.Labels["io.kubernetes.pod.name"] == "survivor" {
			ids = append(ids, c.Id)
		}
	}
	return ids
}
