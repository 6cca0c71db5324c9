package streaming_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/streaming"
)

func TestExecSync(t *testing.T) {
	d := requireDocker(t)
	id := runContainer(t, d, []string{"sleep", "3600"}, nil)
	ctx := t.Context()

	t.Run("output and exit code", func(t *testing.T) {
		out, errOut, code, err := streaming.ExecSync(ctx, d, id, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 10*time.Second, streaming.ExecSyncOutputLimit)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "out\n" || string(errOut) != "err\n" || code != 3 {
			t.Errorf("ExecSync = %q, %q, %d; want \"out\\n\", \"err\\n\", 3", out, errOut, code)
		}
	})

	t.Run("success", func(t *testing.T) {
		out, _, code, err := streaming.ExecSync(ctx, d, id, []string{"echo", "hi"}, 0, streaming.ExecSyncOutputLimit)
		if err != nil || code != 0 || string(out) != "hi\n" {
			t.Errorf("ExecSync = %q, %d, %v; want \"hi\\n\", 0, nil", out, code, err)
		}
	})

	t.Run("output capped", func(t *testing.T) {
		const twenty = 20 << 20
		cmd := []string{"sh", "-c", "head -c 20971520 /dev/zero; head -c 20971520 /dev/zero >&2"}
		out, errOut, code, err := streaming.ExecSync(ctx, d, id, cmd, time.Minute, streaming.ExecSyncOutputLimit)
		if err != nil || code != 0 {
			t.Fatalf("ExecSync: code %d, %v", code, err)
		}
		for name, b := range map[string][]byte{"stdout": out, "stderr": errOut} {
			if len(b) != 16<<20 || cap(b) > 16<<20 {
				t.Errorf("%s: %d bytes (capacity %d) of %d, want the first 16 MiB", name, len(b), cap(b), twenty)
			}
			if !bytes.Equal(b, make([]byte, len(b))) {
				t.Errorf("%s: not the zeros written", name)
			}
		}
	})

	t.Run("small limit", func(t *testing.T) {
		out, _, code, err := streaming.ExecSync(ctx, d, id, []string{"echo", "0123456789"}, 0, 4)
		if err != nil || code != 0 || string(out) != "0123" {
			t.Errorf("ExecSync = %q, %d, %v; want \"0123\", 0, nil", out, code, err)
		}
	})

	for name, cmd := range map[string][]string{
		"timeout kills":             {"sleep", "100"},
		"timeout kills descendants": {"sh", "-c", "sleep 100; echo never"},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, _, _, err := streaming.ExecSync(ctx, d, id, cmd, time.Second, streaming.ExecSyncOutputLimit)
			elapsed := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ExecSync = %v, want DeadlineExceeded", err)
			}
			if elapsed < time.Second || elapsed > 1500*time.Millisecond {
				t.Errorf("ExecSync returned after %s, want 1s-1.5s", elapsed)
			}
			// Gone by the time ExecSync returned: no waiting here.
			if ps := processes(t, d, id); strings.Contains(ps, "sleep 100") {
				t.Errorf("the timed-out command outlived ExecSync:\n%s", ps)
			}
		})
	}

	t.Run("caller's context", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, _, _, err := streaming.ExecSync(cctx, d, id, []string{"sleep", "100"}, 0, streaming.ExecSyncOutputLimit)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ExecSync = %v, want the caller's DeadlineExceeded", err)
		}
		if ps := processes(t, d, id); strings.Contains(ps, "sleep 100") {
			t.Errorf("the command outlived its caller:\n%s", ps)
		}
	})

	t.Run("unknown command", func(t *testing.T) {
		_, _, code, err := streaming.ExecSync(ctx, d, id, []string{"/nonexistent"}, 10*time.Second, streaming.ExecSyncOutputLimit)
		if err == nil && code == 0 {
			t.Error("ExecSync of a missing command succeeded")
		}
	})

	t.Run("unknown container", func(t *testing.T) {
		if _, _, _, err := streaming.ExecSync(ctx, d, "berth-no-such-container", []string{"true"}, 10*time.Second, 16); err == nil {
			t.Error("ExecSync in a missing container succeeded")
		}
	})
}
