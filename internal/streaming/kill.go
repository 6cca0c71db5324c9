package streaming

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// killTimeout bounds the cleanup after a session or an ExecSync ended early.
const killTimeout = 5 * time.Second

// notStartedGrace is how long an exec that shows no process yet may take
// to start before killExec takes it for one that never will.
const notStartedGrace = 250 * time.Millisecond

// killExec SIGKILLs an exec's process and its descendants (a `sh -c`
// wrapper's children too) and waits until the engine reports it exited.
// The pid is the host pid the engine reports: berth shares the host's pid
// namespace with dockerd.
func killExec(ctx context.Context, d Docker, execID string) error {
	start := time.Now()
	killed := false
	delay := 2 * time.Millisecond
	for {
		res, err := d.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("inspect exec %q: %w", execID, err)
		}
		switch {
		case !res.Running && res.PID > 0:
			return nil // exited
		case !res.Running && time.Since(start) > notStartedGrace:
			return nil // never started
		case res.Running && res.PID > 0 && !killed:
			if err := killTree(res.PID); err != nil {
				return fmt.Errorf("kill exec %q: %w", execID, err)
			}
			killed = true
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return fmt.Errorf("exec %q still running: %w", execID, err)
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// killTree SIGKILLs pid and its descendants, listed before the first kill
// so none is lost to reparenting.
func killTree(pid int) error {
	var errs []error
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if err := unix.Kill(p, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill pid %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// descendants lists pid's descendants from /proc, parents first.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, ok := parsePPID(b); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// parsePPID reads the parent pid from /proc/<pid>/stat: the second field
// after the command name, which is in parentheses and may hold anything.
func parsePPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}
