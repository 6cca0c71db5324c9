package network

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// setLoopbackUp brings "lo" up in the network namespace at path, the one
// thing the loopback CNI plugin does. Doing it in-process saves exec'ing a
// plugin binary on every pod start and stop, a visible share of the pod
// network's cost.
//
// The namespace switch happens on a goroutine of its own, so that if the
// way back fails only that goroutine's thread is lost, never the caller's.
func setLoopbackUp(path string) error {
	errc := make(chan error, 1)
	go func() { errc <- loopbackUpInNetns(path) }()
	return <-errc
}

func loopbackUpInNetns(path string) (retErr error) {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("loopback: open netns %s: %w", path, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("loopback: current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("loopback: enter netns %s: %w", path, err)
	}
	defer func() {
		// A thread left in the pod's namespace must never run other
		// goroutines: keep it locked, and Go ends it with this goroutine.
		if err := netns.Set(orig); err != nil {
			retErr = fmt.Errorf("loopback: return to host netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
	}()

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: set lo up: %w", err)
	}
	return nil
}
