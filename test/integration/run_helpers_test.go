package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/cli"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// podRun is one `berth run` in-process, against the test's berth.
type podRun struct {
	e      *env
	dir    string
	out    *syncBuffer
	errOut *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startRun runs `berth run` on manifest (a Pod, with ConfigMaps and
// Secrets) against the env's berth socket. {{TEST}} in the manifest is
// replaced by the test's label value, so cleanup finds the pod.
func (e *env) startRun(manifest string, extra ...string) *podRun {
	e.t.Helper()
	dir := e.t.TempDir()
	manifest = strings.ReplaceAll(manifest, "{{TEST}}", sanitize(e.t.Name()))
	manifest = strings.ReplaceAll(manifest, "{{DIR}}", dir)
	path := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		e.t.Fatal(err)
	}
	r := &podRun{e: e, dir: dir, out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan error, 1)}
	args := append([]string{"run", path,
		"--runtime-endpoint", "unix://" + e.socket,
		"--pod-logs-dir", filepath.Join(dir, "pods"),
		"--container-logs-dir", filepath.Join(dir, "containers"),
		"--state-dir", filepath.Join(dir, "state"),
		"--status-file", filepath.Join(dir, "status.yaml"),
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	cmd := cli.NewRoot(r.out, r.errOut)
	cmd.SetArgs(args)
	go func() { r.done <- cmd.ExecuteContext(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(90 * time.Second):
			e.t.Errorf("berth run did not end")
		}
		if e.t.Failed() {
			e.t.Logf("berth run output:\n%s\nstderr:\n%s", r.out.String(), r.errOut.String())
		}
	})
	return r
}

// wait waits for berth run to end by itself and returns its error.
func (r *podRun) wait(timeout time.Duration) error {
	r.e.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(timeout):
		r.e.t.Fatalf("berth run still running after %v; output:\n%s", timeout, r.out.String())
	}
	return nil
}

// stop cancels berth run as Ctrl-C does and waits for it.
func (r *podRun) stop(timeout time.Duration) error {
	r.cancel()
	return r.wait(timeout)
}

// waitOutput waits until berth run's output holds s.
func (r *podRun) waitOutput(s string, timeout time.Duration) {
	r.e.t.Helper()
	r.waitOutputCount(s, 1, timeout)
}

// waitOutputCount waits until berth run's output holds s n times.
func (r *podRun) waitOutputCount(s string, n int, timeout time.Duration) {
	r.e.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(r.out.String(), s) < n {
		if time.Now().After(deadline) {
			r.e.t.Fatalf("%q not %d times in berth run's output after %v:\n%s", s, n, timeout, r.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// status reads the pod that --status-file received.
func (r *podRun) status() *corev1.Pod {
	r.e.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "status.yaml"))
	if err != nil {
		r.e.t.Fatalf("status file: %v", err)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(b, &pod); err != nil {
		r.e.t.Fatalf("status file: %v", err)
	}
	return &pod
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

func containerStatusOf(pod *corev1.Pod, name string) corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if s.Name == name {
				return s
			}
		}
	}
	return corev1.ContainerStatus{}
}
