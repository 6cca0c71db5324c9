package containerd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/cli"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestBerthRunOnContainerd runs, through containerd's CRI, the same kind of
// pod the berth tests run (an init container, a sidecar, two containers
// sharing an emptyDir, a ConfigMap in env): the manager is runtime-neutral,
// and berth run ends 0 with the pod Succeeded and removed (--rm).
func TestBerthRunOnContainerd(t *testing.T) {
	rt, _ := clients(t)
	dir := t.TempDir()
	manifest := `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {word: neutral}
---
apiVersion: v1
kind: Pod
metadata: {name: berth-run-ctrd}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  volumes:
  - {name: work, emptyDir: {}}
  initContainers:
  - name: init
    image: ` + busybox + `
    command: [sh, -c, "echo seeded > /work/seed; echo init done"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: side
    image: ` + busybox + `
    restartPolicy: Always
    command: [sh, -c, "echo side up; while true; do date > /work/side; sleep 0.2; done"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: writer
    image: ` + busybox + `
    command: [sh, -c, "cat /work/seed; echo $(WORD) > /work/msg"]
    env: [{name: WORD, valueFrom: {configMapKeyRef: {name: cfg, key: word}}}]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: reader
    image: ` + busybox + `
    command: [sh, -c, "until [ -e /work/msg ]; do sleep 0.1; done; echo got-$(cat /work/msg); test -s /work/side && echo side-seen"]
    volumeMounts: [{name: work, mountPath: /work, readOnly: true}]
`
	path := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := cli.NewRoot(&out, &errOut)
	cmd.SetArgs([]string{"run", path, "--rm",
		"--runtime-endpoint", theHarness.endpoint,
		"--pod-logs-dir", filepath.Join(dir, "pods"),
		"--container-logs-dir", filepath.Join(dir, "containers"),
		"--state-dir", filepath.Join(dir, "state"),
		"--status-file", filepath.Join(dir, "status.yaml"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("berth run on containerd: %v\noutput:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"[init] init done", "[side] side up", "[writer] seeded", "[reader] got-neutral", "[reader] side-seen", "pod default/berth-run-ctrd: Succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in berth run's output:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "status.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(b, &pod); err != nil {
		t.Fatal(err)
	}
	for _, s := range pod.Status.ContainerStatuses {
		if !strings.HasPrefix(s.ContainerID, "containerd://") {
			t.Errorf("container %s has ID %q, want containerd://…", s.Name, s.ContainerID)
		}
	}
	// --rm: containerd holds nothing of the pod any more.
	sbs, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range sbs {
		if sb.GetMetadata().GetName() == "berth-run-ctrd" {
			t.Errorf("sandbox %s left in containerd after --rm", sb.GetId())
		}
	}
}
