package volume

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// openBeneathFunc opens path (relative) below the directory root as an
// O_PATH descriptor. Symlinks are followed only while they stay below
// root: an absolute link, or one whose ".." climbs out, fails with EXDEV.
// That is how a configMap key (key -> ..data/key) keeps working while a
// link planted by a container cannot aim a mount at the host.
type openBeneathFunc func(root int, path string) (int, error)

// pickOpenBeneath prefers openat2(2), where the kernel does the
// confinement; kernels before 5.6, or seccomp profiles that refuse the
// call, get the walk in user space.
func pickOpenBeneath() openBeneathFunc {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return walkBeneath
	}
	unix.Close(fd)
	return openat2Beneath
}

func openat2Beneath(root int, path string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 64 {
		fd, err := unix.Openat2(root, path, how)
		// EAGAIN: a rename somewhere on the system raced the ".."
		// check; the kernel asks for a retry rather than guess.
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
	return -1, unix.EAGAIN
}

// maxSymlinks is the kernel's limit (MAXSYMLINKS).
const maxSymlinks = 40

// walkBeneath resolves path one component at a time with
// openat(O_NOFOLLOW), reading each symlink and resolving its target from
// the directory it sits in, never above root. ".." returns to a
// descriptor already held, so a directory moved meanwhile cannot take the
// walk outside.
func walkBeneath(root int, path string) (int, error) {
	var stack []int // directories walked into, root excluded
	defer func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
	}()
	rest := splitPath(path)
	links := 0
	for len(rest) > 0 {
		el := rest[0]
		rest = rest[1:]
		if el == ".." {
			if len(stack) == 0 {
				return -1, unix.EXDEV
			}
			unix.Close(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			continue
		}
		cur := root
		if len(stack) > 0 {
			cur = stack[len(stack)-1]
		}
		fd, err := unix.Openat(cur, el, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := readlinkFD(fd)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			if links++; links > maxSymlinks {
				return -1, unix.ELOOP
			}
			if strings.HasPrefix(target, "/") {
				return -1, unix.EXDEV
			}
			rest = append(splitPath(target), rest...)
			continue
		case unix.S_IFDIR:
		default:
			if len(rest) > 0 {
				unix.Close(fd)
				return -1, unix.ENOTDIR
			}
		}
		stack = append(stack, fd)
	}
	if len(stack) == 0 {
		return unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0)
	}
	fd := stack[len(stack)-1]
	stack = stack[:len(stack)-1]
	return fd, nil
}

// readlinkFD reads the symlink an O_PATH|O_NOFOLLOW descriptor holds, so
// the link read is the one just checked.
func readlinkFD(fd int) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// splitPath splits a relative path into its elements, dropping empty ones
// and ".".
func splitPath(p string) []string {
	var out []string
	for _, el := range strings.Split(p, "/") {
		if el != "" && el != "." {
			out = append(out, el)
		}
	}
	return out
}

// openOrMake opens els below root, creating the directories that are
// missing with mode perm, as the kubelet does for a subPath. Each new
// directory is made with mkdirat in the directory just resolved, which
// never follows a symlink, and the path is then resolved again below
// root: whatever a container swaps in meanwhile is confined too.
func openOrMake(open openBeneathFunc, root int, els []string, perm uint32) (int, error) {
	parent, err := unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for i, el := range els {
		p := strings.Join(els[:i+1], "/")
		fd, err := open(root, p)
		if errors.Is(err, unix.ENOENT) {
			if err := mkdirIn(parent, el, perm); err != nil {
				unix.Close(parent)
				return -1, fmt.Errorf("create %q: %w", p, err)
			}
			fd, err = open(root, p)
		}
		unix.Close(parent)
		if err != nil {
			return -1, &beneathError{path: p, err: err}
		}
		parent = fd
	}
	return parent, nil
}

// mkdirIn makes name in dir with exactly perm (past the umask). A name
// that appeared meanwhile is left for the caller's next open to judge.
func mkdirIn(dir int, name string, perm uint32) error {
	err := unix.Mkdirat(dir, name, perm)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return err
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, perm)
}

// beneathError is a failure to resolve path below a volume's root.
type beneathError struct {
	path string
	err  error
}

func (e *beneathError) Error() string {
	if errors.Is(e.err, unix.EXDEV) {
		return fmt.Sprintf("%q resolves outside the volume", e.path)
	}
	return fmt.Sprintf("open %q: %v", e.path, e.err)
}

func (e *beneathError) Unwrap() error { return e.err }
