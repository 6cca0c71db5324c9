package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errRootInUse: another berth serves the same root dir.
var errRootInUse = errors.New("root dir in use")

// lockRoot keeps two berths off one root dir: each would reconcile the
// other's half-made sandboxes away. The lock goes with the process, so a
// killed berth leaves none; the file names the holder's pid.
func lockRoot(root string) (unlock func(), err error) {
	path := filepath.Join(root, "berth.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("root dir lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is served by another berth (pid %s)", errRootInUse, root, strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("root dir lock: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
