package streaming

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// dialInNetns dials TCP addr from inside the network namespace of pid. The
// socket is made on a thread switched into the namespace and keeps it
// after the thread switches back.
func dialInNetns(ctx context.Context, pid int, addr string) (net.Conn, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("dial %s: sandbox has no process (pid %d)", addr, pid)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// A goroutine of its own owns the thread. If switching back fails
		// the thread stays locked and ends with the goroutine rather than
		// serving other goroutines from the pod's namespace.
		runtime.LockOSThread()
		conn, restored, err := dialOnThread(ctx, pid, addr)
		if restored {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	res := <-done
	return res.conn, res.err
}

// dialOnThread runs on a locked thread; restored reports whether the
// thread is back in its original namespace.
func dialOnThread(ctx context.Context, pid int, addr string) (conn net.Conn, restored bool, err error) {
	orig, err := netns.Get()
	if err != nil {
		return nil, true, fmt.Errorf("dial %s: current network namespace: %w", addr, err)
	}
	defer orig.Close()
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, true, fmt.Errorf("dial %s: open %s: %w", addr, path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, true, fmt.Errorf("dial %s: enter %s: %w", addr, path, err)
	}
	var d net.Dialer
	conn, dialErr := d.DialContext(ctx, "tcp4", addr)
	if err := netns.Set(orig); err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, false, fmt.Errorf("dial %s: return from %s: %w", addr, path, err)
	}
	if dialErr != nil {
		return nil, true, fmt.Errorf("dial %s in %s: %w", addr, path, dialErr)
	}
	return conn, true, nil
}
