package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// prepareHostPath checks (or creates) the host path as the kubelet's
// hostPath type checker does. The path itself is what gets bound. A dry
// run skips the types that would create the path.
func prepareHostPath(hp *corev1.HostPathVolumeSource, dryRun bool) (Volume, error) {
	path := hp.Path
	switch {
	case path == "":
		return Volume{}, fieldErrorf("hostPath.path", "must not be empty")
	case !filepath.IsAbs(path):
		return Volume{}, fieldErrorf("hostPath.path", "%q must be an absolute path", path)
	case hasDotDot(path):
		return Volume{}, fieldErrorf("hostPath.path", "%q must not contain '..'", path)
	}
	var typ corev1.HostPathType
	if hp.Type != nil {
		typ = *hp.Type
	}
	if dryRun && (typ == corev1.HostPathDirectoryOrCreate || typ == corev1.HostPathFileOrCreate) {
		return Volume{HostPath: path}, nil
	}
	if err := checkHostPathType(path, typ); err != nil {
		return Volume{}, &fieldError{field: "hostPath.type", err: err}
	}
	return Volume{HostPath: path}, nil
}

func checkHostPathType(path string, typ corev1.HostPathType) error {
	info, statErr := os.Stat(path)
	missing := errors.Is(statErr, fs.ErrNotExist)
	if statErr != nil && !missing {
		return fmt.Errorf("%s: %w", typ, statErr)
	}
	mode := fs.FileMode(0)
	if info != nil {
		mode = info.Mode()
	}
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if missing {
			// 0755 as the kubelet creates it; explicit chmod past the umask.
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("%s: create %q: %w", typ, path, err)
			}
			return os.Chmod(path, 0o755)
		}
		return expect(path, typ, mode.IsDir(), "a directory")
	case corev1.HostPathFileOrCreate:
		if missing {
			// The parent must exist: the kubelet does not create it either.
			f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("%s: create %q: %w", typ, path, err)
			}
			return f.Close()
		}
		return expect(path, typ, mode.IsRegular(), "a file")
	}
	var ok bool
	var what string
	switch typ {
	case corev1.HostPathDirectory:
		ok, what = mode.IsDir(), "a directory"
	case corev1.HostPathFile:
		ok, what = mode.IsRegular(), "a file"
	case corev1.HostPathSocket:
		ok, what = mode&fs.ModeSocket != 0, "a socket"
	case corev1.HostPathCharDev:
		ok, what = mode&fs.ModeCharDevice != 0, "a character device"
	case corev1.HostPathBlockDev:
		ok, what = mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0, "a block device"
	default:
		return fmt.Errorf("%q is not a hostPath type (want one of \"\", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice)", typ)
	}
	if missing {
		return fmt.Errorf("%s: %q does not exist", typ, path)
	}
	return expect(path, typ, ok, what)
}

func expect(path string, typ corev1.HostPathType, ok bool, what string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s: %q is not %s", typ, path, what)
}

func hasDotDot(path string) bool {
	for _, el := range strings.Split(filepath.ToSlash(path), "/") {
		if el == ".." {
			return true
		}
	}
	return false
}
