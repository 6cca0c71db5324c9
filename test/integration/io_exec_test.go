package integration

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestIOExecSync: ExecSync through the CRI and `crictl exec -s`: output,
// exit code, the timeout (DeadlineExceeded, the command killed), the
// 16 MiB output cap and the errors of a bad request.
func TestIOExecSync(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	pod, podID := e.startPod("execsync", nil)
	id := e.runContainer(podID, pod, containerConfig("sleeper", "sleep 3600"))

	r := e.execSync(id, 10, "sh", "-c", "echo out; echo err >&2; exit 3")
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 3 {
		t.Errorf("ExecSync = stdout %q stderr %q exit %d, want out, err, 3", r.Stdout, r.Stderr, r.ExitCode)
	}
	// crictl prints stdout, then stderr, each with a newline.
	out, errOut, err := c.runIn(30*time.Second, nil, "exec", "-s", id, "sh", "-c", "echo out; echo err >&2")
	if err != nil || out != "out\n\nerr\n\n" {
		t.Errorf("crictl exec -s: stdout %q stderr %q err %v, want %q", out, errOut, err, "out\n\nerr\n\n")
	}
	_, errOut, err = c.runIn(30*time.Second, nil, "exec", "-s", id, "sh", "-c", "echo err >&2; exit 3")
	if err == nil || !strings.Contains(errOut, "exited with 3") {
		t.Errorf("crictl exec -s of exit 3: err %v stderr %q, want a failure saying \"exited with 3\"", err, errOut)
	}

	t.Run("timeout", func(t *testing.T) {
		e := e.forT(t)
		start := time.Now()
		_, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "10"}, Timeout: 1})
		took := time.Since(start)
		if status.Code(err) != codes.DeadlineExceeded || took > 2*time.Second {
			t.Errorf("ExecSync sleep 10 with timeout 1 = %v after %v, want DeadlineExceeded within 2s", err, took.Round(time.Millisecond))
		}
		if ps := e.processList(id); strings.Contains(ps, "sleep 10") {
			t.Errorf("sleep 10 still runs after ExecSync timed out:\n%s", ps)
		}

		// crictl (the kubelet's CRI client) turns DeadlineExceeded, and
		// only that code, into "command timed out".
		start = time.Now()
		_, errOut, err := c.runIn(30*time.Second, nil, "exec", "-s", "--timeout", "1", id, "sleep", "10")
		took = time.Since(start)
		if err == nil || !strings.Contains(errOut, "command timed out") || took > 2500*time.Millisecond {
			t.Errorf("crictl exec -s --timeout 1 sleep 10: err %v after %v, stderr %q; want a \"command timed out\" failure within ~2s", err, took.Round(time.Millisecond), errOut)
		}
		if ps := e.processList(id); strings.Contains(ps, "sleep 10") {
			t.Errorf("sleep 10 still runs after crictl exec -s --timeout 1:\n%s", ps)
		}
		// A sh -c wrapper's children go too.
		_, err = e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "sleep 11; echo done"}, Timeout: 1})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("ExecSync sh -c 'sleep 11' with timeout 1 = %v, want DeadlineExceeded", err)
		}
		if ps := e.processList(id); strings.Contains(ps, "sleep 11") {
			t.Errorf("the child sleep 11 of a timed-out sh -c still runs:\n%s", ps)
		}
	})

	t.Run("output cap", func(t *testing.T) {
		// The kubelet's and crictl's clients take messages of up to 16 MiB:
		// berth answers within that, stdout and stderr together.
		e := e.forT(t)
		big := e.kubeletClient()
		const capped = 16<<20 - 4<<10
		r, err := big.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Timeout: 60,
			Cmd: []string{"sh", "-c", "head -c 20000000 /dev/zero; exit 4"}})
		if err != nil {
			t.Errorf("ExecSync of 20 MB on stdout: %v; want stdout capped at %d bytes", err, capped)
		} else {
			if len(r.Stdout) != capped || bytes.Count(r.Stdout, []byte{0}) != capped || len(r.Stderr) != 0 {
				t.Errorf("stdout is %d bytes (%d NULs), stderr %d; want exactly %d NULs and no stderr", len(r.Stdout), bytes.Count(r.Stdout, []byte{0}), len(r.Stderr), capped)
			}
			if r.ExitCode != 4 {
				t.Errorf("exit code %d after capped output, want 4 (the command ran to its end)", r.ExitCode)
			}
		}
		// Both streams over the cap: they share it, the call succeeds.
		r, err = big.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Timeout: 60,
			Cmd: []string{"sh", "-c", "head -c 17000000 /dev/zero | tr '\\0' o; head -c 17000000 /dev/zero | tr '\\0' e >&2"}})
		if err != nil {
			t.Errorf("ExecSync of 17 MB on stdout and on stderr: %v; want each capped", err)
		} else if len(r.Stdout)+len(r.Stderr) != capped || bytes.Count(r.Stdout, []byte("o")) != len(r.Stdout) || bytes.Count(r.Stderr, []byte("e")) != len(r.Stderr) || len(r.Stdout) != capped/2 {
			t.Errorf("stdout %d bytes, stderr %d bytes; want half each of %d of the command's output", len(r.Stdout), len(r.Stderr), capped)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		e := e.forT(t)
		_, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "cmd") {
			t.Errorf("ExecSync without cmd = %v, want InvalidArgument naming cmd", err)
		}
		_, err = e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: strings.Repeat("e", 64), Cmd: []string{"true"}})
		if status.Code(err) != codes.NotFound {
			t.Errorf("ExecSync in an unknown container = %v, want NotFound", err)
		}
		done := e.runContainer(podID, pod, containerConfig("done", "true"))
		e.waitExit(done, 30*time.Second)
		_, err = e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: done, Cmd: []string{"true"}})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("ExecSync in an exited container = %v, want FailedPrecondition", err)
		}
		_, errOut, err := c.runIn(30*time.Second, nil, "exec", "-s", done, "true")
		if err == nil || !strings.Contains(errOut, "FailedPrecondition") {
			t.Errorf("crictl exec -s in an exited container: err %v stderr %q, want FailedPrecondition", err, errOut)
		}
	})
}
