package imagevolume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// SubPathError is a sub path that is malformed or names nothing in the
// image: the request's fault, not the host's.
type SubPathError struct {
	SubPath string
	Reason  string
}

func (e *SubPathError) Error() string {
	return fmt.Sprintf("%q %s", e.SubPath, e.Reason)
}

func subPathErr(sub, format string, args ...any) error {
	return &SubPathError{SubPath: sub, Reason: fmt.Sprintf(format, args...)}
}

// maxSymlinks is how many symlinks Resolve follows, as the kernel's
// MAXSYMLINKS.
const maxSymlinks = 40

// Resolve returns the host path of sub inside rootfs, an extracted image.
// sub must be relative and free of ".." (the kubelet checks that too; it is
// checked again here because the path is the request's). Symlinks on the
// way are followed as the container would see them, with rootfs as "/": an
// absolute target starts again at rootfs and ".." stops at it, so the
// result never leaves rootfs. Images use such links ("bin" -> "usr/bin");
// refusing them would refuse ordinary sub paths. The result exists and
// holds no symlink, so Docker binds exactly it.
func Resolve(rootfs, sub string) (string, error) {
	if path.IsAbs(sub) {
		return "", subPathErr(sub, "is absolute")
	}
	if slices.Contains(strings.Split(sub, "/"), "..") {
		return "", subPathErr(sub, `contains ".."`)
	}
	todo := split(sub)
	var done []string // resolved components, each an existing non-link
	links := 0
	for len(todo) > 0 {
		el := todo[0]
		todo = todo[1:]
		switch el {
		case ".":
			continue
		case "..":
			// Only from a symlink's target: clamp at the root.
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := filepath.Join(append([]string{rootfs}, append(done, el)...)...)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if missing := path.Join(append(done, el)...); missing != path.Clean(sub) {
				return "", subPathErr(sub, "does not exist in the image (%s is missing)", missing)
			}
			return "", subPathErr(sub, "does not exist in the image")
		}
		if err != nil {
			return "", fmt.Errorf("sub path %q: %w", sub, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", subPathErr(sub, "does not exist in the image (%s is not a directory)", path.Join(append(done, el)...))
			}
			done = append(done, el)
			continue
		}
		if links++; links > maxSymlinks {
			return "", subPathErr(sub, "has too many levels of symbolic links")
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", fmt.Errorf("sub path %q: %w", sub, err)
		}
		if path.IsAbs(target) {
			done = nil
		}
		todo = append(split(target), todo...)
	}
	return filepath.Join(append([]string{rootfs}, done...)...), nil
}

// split returns p's non-empty elements.
func split(p string) []string {
	return slices.DeleteFunc(strings.Split(p, "/"), func(s string) bool { return s == "" })
}
