package volume

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Group permission bits the kubelet adds for an fsGroup (SetVolumeOwnership).
const (
	groupRW   fs.FileMode = 0o660
	groupRO   fs.FileMode = 0o440
	groupExec fs.FileMode = 0o110
)

// fsGroupMode is the mode the kubelet leaves on a file of a volume owned by
// an fsGroup: group read (and write unless read-only), directories setgid
// and searchable so new files inherit the group.
func fsGroupMode(mode fs.FileMode, isDir, readOnly bool) fs.FileMode {
	mask := groupRW
	if readOnly {
		mask = groupRO
	}
	if isDir {
		mask |= fs.ModeSetgid | groupExec
	}
	return mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | mask
}

// applyFSGroup gives root and everything under it to group gid, as the
// kubelet does for the pod's securityContext.fsGroup. Symlinks are left
// alone: their targets are either inside (and walked) or not ours.
func applyFSGroup(root string, gid int64, readOnly bool) error {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, int(gid)); err != nil {
			return err
		}
		return os.Chmod(path, fsGroupMode(info.Mode(), d.IsDir(), readOnly))
	})
	if err != nil {
		return fmt.Errorf("apply fsGroup %d to %q: %w", gid, root, err)
	}
	return nil
}

// rootHasGroup reports whether dir already carries gid with the setgid
// bit, the state applyFSGroup leaves it in.
func rootHasGroup(dir string, gid int64) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false
	}
	return int64(st.Gid) == gid && st.Mode&syscall.S_ISGID != 0
}
