package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// subPathDir holds the subPath binds, named as the kubelet names it:
// <pod dir>/volume-subpaths/<volume>/<container>/<volumeMount index>.
const subPathDir = "volume-subpaths"

// subPathMount is one volumeMount with a subPath, to bind.
type subPathMount struct {
	podDir    string
	volume    string
	container string
	index     int
	vol       Volume
	sub       string
}

func (s subPathMount) target() string {
	return filepath.Join(s.podDir, subPathDir, s.volume, s.container, strconv.Itoa(s.index))
}

// checkSubPath rejects what the API server would: an absolute path or one
// with a ".." element.
func checkSubPath(sub string) error {
	if filepath.IsAbs(sub) {
		return errors.New("must be a relative path")
	}
	if hasDotDot(sub) {
		return errors.New("must not contain '..'")
	}
	return nil
}

// bindSubPath binds s.sub of the volume onto s.target() and returns the
// target, which is what the runtime gets. Handing the runtime
// <volume>/<sub> instead would let a container sharing the volume swap a
// component for a symlink between our check and the runtime's bind
// (CVE-2017-1002101); the target is ours and holds the very file or
// directory that was opened below the volume's root.
func (m *Manager) bindSubPath(ctx context.Context, s subPathMount) (string, error) {
	target := s.target()
	if m.dryRun {
		return target, nil
	}
	root, err := unix.Open(s.vol.HostPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		return "", fmt.Errorf("volume %q is not a directory", s.vol.HostPath)
	}
	if err != nil {
		return "", fmt.Errorf("open volume %q: %w", s.vol.HostPath, err)
	}
	defer unix.Close(root)
	var rootSt unix.Stat_t
	if err := unix.Fstat(root, &rootSt); err != nil {
		return "", fmt.Errorf("stat volume %q: %w", s.vol.HostPath, err)
	}
	// New directories get the volume root's mode, as the kubelet does.
	fd, err := openOrMake(m.openBeneath, root, splitPath(s.sub), rootSt.Mode&0o777)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("stat %q: %w", s.sub, err)
	}
	if m.beforeBind != nil {
		m.beforeBind(filepath.Join(s.vol.HostPath, s.sub))
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	done, err := reuseTarget(ctx, target, &st, isDir)
	if err != nil || done {
		return target, err
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), target, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(target)
		return "", fmt.Errorf("bind %q to %q: %w", s.sub, target, err)
	}
	// The bind must show what was opened; anything else means the mount
	// table is not what we think, and the runtime must not get it.
	if same, err := sameFile(target, &st); err != nil || !same {
		_ = unmountUnder(context.WithoutCancel(ctx), target)
		return "", fmt.Errorf("bind %q to %q: target does not show the opened file (%v)", s.sub, target, err)
	}
	return target, nil
}

// reuseTarget readies target for a bind of st: done when a bind of that
// same file is there already (a container restart), else an empty file or
// directory of the right kind with nothing mounted on it.
func reuseTarget(ctx context.Context, target string, st *unix.Stat_t, isDir bool) (done bool, err error) {
	mounted, err := mountedAt(target)
	if err != nil {
		return false, err
	}
	if mounted {
		if same, err := sameFile(target, st); err != nil || same {
			return same, err
		}
		// The subPath now names another file (a configMap key that was
		// updated): bind the new one, as the kubelet does.
		if err := unmountUnder(ctx, target); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return false, fmt.Errorf("create %q: %w", filepath.Dir(target), err)
	}
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, err
	case fi.IsDir() == isDir && (isDir || fi.Mode().IsRegular()):
		return false, nil
	default:
		// Left from a subPath of the other kind. Not mounted, and Remove
		// (never RemoveAll) takes only an empty directory.
		if err := os.Remove(target); err != nil {
			return false, fmt.Errorf("replace %q: %w", target, err)
		}
	}
	if isDir {
		err = os.Mkdir(target, 0o750)
	} else {
		// A file takes a bind of any non-directory: file, device, socket.
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return false, fmt.Errorf("create bind target %q: %w", target, err)
	}
	return false, nil
}

// sameFile reports whether path (followed) is the file st describes.
func sameFile(path string, st *unix.Stat_t) (bool, error) {
	var got unix.Stat_t
	if err := unix.Stat(path, &got); err != nil {
		return false, fmt.Errorf("stat %q: %w", path, err)
	}
	return got.Dev == st.Dev && got.Ino == st.Ino, nil
}
