package containerlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const (
	fileMode = 0o640
	dirMode  = 0o755
)

// checkPath accepts absolute, clean paths below "/".
func checkPath(path string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || path == "/" ||
		strings.Contains(path, "\x00") || strings.Contains(path, "/../") {
		return fmt.Errorf("log path %q: must be absolute and clean: %w", path, errdefs.ErrInvalidArgument)
	}
	return nil
}

// openLog opens the log file at path for appending, creating it (0640) and
// its missing parent directories (0755). It follows no symlink: the parent
// is resolved with openat2(RESOLVE_NO_SYMLINKS), or component by component
// with O_NOFOLLOW where openat2 is missing, and the file is opened relative
// to it with O_NOFOLLOW. The file is opened read-write so a resume can read
// its tail.
func openLog(path string) (*os.File, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	dir, name := filepath.Split(path)
	dirfd, err := openDir(path, filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)

	const flags = unix.O_RDWR | unix.O_APPEND | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	created := true
	fd, err := unix.Openat(dirfd, name, flags|unix.O_CREAT|unix.O_EXCL, fileMode)
	if errors.Is(err, unix.EEXIST) {
		created = false
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return nil, pathError(path, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := checkRegular(f, path, created); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkRegular refuses anything but a regular file (a FIFO would block the
// copier; O_NONBLOCK above keeps the open itself from blocking), clears
// O_NONBLOCK and sets the mode of a file just created regardless of umask.
func checkRegular(f *os.File, path string, created bool) error {
	var st unix.Stat_t
	fd := int(f.Fd())
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("log path %q: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("log path %q: not a regular file: %w", path, errdefs.ErrInvalidArgument)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("log path %q: %w", path, err)
	}
	if created {
		if err := unix.Fchmod(fd, fileMode); err != nil {
			return fmt.Errorf("log path %q: %w", path, err)
		}
	}
	return nil
}

// openat2 is unix.Openat2; tests replace it to take the fallback.
var openat2 = unix.Openat2

// openDir returns an O_DIRECTORY descriptor of dir, creating what is missing.
func openDir(path, dir string) (int, error) {
	fd, err := openat2(unix.AT_FDCWD, dir, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	})
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ENOENT):
		// Something is missing: create it, one component at a time.
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.E2BIG):
		// No openat2 (kernel < 5.6, or a seccomp filter): walk.
	default:
		return -1, pathError(path, dir, err)
	}
	return walkDir(path, dir)
}

// walkDir opens dir from "/" one component at a time with O_NOFOLLOW,
// creating missing directories with mkdirat.
func walkDir(path, dir string) (int, error) {
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, pathError(path, "/", err)
	}
	cur := "/"
	for _, name := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		if name == "" {
			continue
		}
		cur = filepath.Join(cur, name)
		next, err := openChild(fd, name)
		unix.Close(fd)
		if err != nil {
			return -1, pathError(path, cur, err)
		}
		fd = next
	}
	return fd, nil
}

// openChild opens directory name below parent, creating it when missing.
func openChild(parent int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(parent, name, flags, 0)
	if !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	created := true
	if err := unix.Mkdirat(parent, name, dirMode); errors.Is(err, unix.EEXIST) {
		created = false // made by someone else meanwhile
	} else if err != nil {
		return -1, err
	}
	if fd, err = unix.Openat(parent, name, flags, 0); err != nil {
		return -1, err
	}
	if created {
		if err := unix.Fchmod(fd, dirMode); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// pathError names the path and, for a symlink, the component that is one,
// as an invalid argument: berth never follows a link it did not make.
func pathError(path, at string, err error) error {
	if errors.Is(err, unix.ELOOP) || (errors.Is(err, unix.ENOTDIR) && firstSymlink(at) != "") {
		link := firstSymlink(at)
		if link == "" || link == path {
			return fmt.Errorf("log path %q: is a symbolic link: %w", path, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("log path %q: %q is a symbolic link: %w", path, link, errdefs.ErrInvalidArgument)
	}
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("log path %q: %q: %w: %w", path, at, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("log path %q: %q: %w", path, at, err)
}

// firstSymlink returns the first component of p that is a symlink, for
// error messages only.
func firstSymlink(p string) string {
	cur := "/"
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		cur = filepath.Join(cur, name)
		if fi, err := os.Lstat(cur); err != nil {
			return ""
		} else if fi.Mode()&os.ModeSymlink != 0 {
			return cur
		}
	}
	return ""
}

// openLockedLog opens a log file for a copier and takes an exclusive lock
// on it: one writer per file. A second berth on the same Docker daemon, or
// a stale copier, fails here instead of appending a second copy of every
// line. Readers (the kubelet, crictl) take no lock and are not affected.
func openLockedLog(path string) (*os.File, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("log file %s: another writer holds it: %w", path, errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("lock log file %s: %w", path, err)
	}
	return f, nil
}
