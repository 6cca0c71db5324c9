// Command pause is the infra process of a berth pod sandbox.
//
// It holds the pod's namespaces (network, IPC, and PID when the pod shares
// its process namespace) open for as long as the sandbox lives, so it does
// nothing but wait. It is built static (CGO_ENABLED=0) so that it runs in an
// image FROM scratch, with no libc and no shell.
package main

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

func main() {
	// Docker stops the sandbox with SIGTERM (SIGINT when run by hand). As PID 1
	// the kernel ignores any signal that has no handler, so without these the
	// stop would wait for its timeout and end in SIGKILL. Exit 0: a stopped
	// sandbox is not a failed one.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, unix.SIGINT, unix.SIGTERM)

	// When the pod shares one PID namespace we are its PID 1, and every
	// orphaned process in it is re-parented to us: reap them, or they stay
	// zombies for the life of the pod. A buffer of one is enough: signals
	// coalesce anyway, and each wake-up reaps every child that has exited.
	child := make(chan os.Signal, 1)
	signal.Notify(child, unix.SIGCHLD)

	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-child:
			reap()
		}
	}
}

// reap collects every exited child without blocking; it returns when none is
// left to collect (0) or there are no children at all (ECHILD).
func reap() {
	for {
		var status unix.WaitStatus
		pid, err := unix.Wait4(-1, &status, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
