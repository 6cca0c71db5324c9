package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// file is one file of an atomically written volume.
type file struct {
	data []byte
	mode fs.FileMode
}

// payload is a volume's files by clean relative path.
type payload map[string]file

const (
	dataDir    = "..data"
	dataDirTmp = "..data_tmp"
)

// atomicWriter writes a payload the way the kubelet's AtomicWriter does, so
// a reader never sees half of an update:
//
//	<dir>/..2025_01_02_15_04_05.123/   the files of one version
//	<dir>/..data -> ..2025_...          swapped by rename(2), atomically
//	<dir>/<top> -> ..data/<top>         what the container sees
type atomicWriter struct {
	dir        string
	fsGroup    *int64
	beforeSwap func(dir string)
	// grace: versions older than the previous one are removed once this
	// old.
	grace time.Duration
}

// write makes files the content of w.dir and reports whether it changed.
func (w atomicWriter) write(files payload) (changed bool, err error) {
	if err := ensureDir(w.dir); err != nil {
		return false, err
	}
	current, err := os.Readlink(filepath.Join(w.dir, dataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %q: %w", filepath.Join(w.dir, dataDir), err)
	}
	if current != "" && w.holds(filepath.Join(w.dir, current), files) {
		return false, w.link(files)
	}
	ts, err := w.writeVersion(files)
	if err != nil {
		return false, err
	}
	if err := w.link(files); err != nil {
		return true, err
	}
	// The version just replaced stays until the next change, and any
	// older one until it has been replaced for versionGrace: a reader that
	// resolved ..data a moment before a swap is still opening files in
	// it. Removing it at once (as the kubelet does) makes that reader fail
	// with ENOENT.
	return true, w.removeOld(ts, current)
}

// writeVersion writes files into a new timestamped directory and points
// ..data at it.
func (w atomicWriter) writeVersion(files payload) (_ string, retErr error) {
	tmp := filepath.Join(w.dir, dataDirTmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("remove stale %q: %w", tmp, err)
	}
	tsDir, err := os.MkdirTemp(w.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return "", fmt.Errorf("create version directory in %q: %w", w.dir, err)
	}
	defer func() {
		if retErr != nil {
			_ = os.RemoveAll(tsDir)
		}
	}()
	// MkdirTemp makes 0700; container users must be able to traverse.
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return "", err
	}
	for rel, f := range files {
		full := filepath.Join(tsDir, rel)
		if err := mkdirs(tsDir, filepath.Dir(rel)); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return "", fmt.Errorf("write %q: %w", full, err)
		}
		// Past the umask: the mode is part of the spec.
		if err := os.Chmod(full, f.mode); err != nil {
			return "", err
		}
	}
	if w.fsGroup != nil {
		if err := applyFSGroup(tsDir, *w.fsGroup, true); err != nil {
			return "", err
		}
	}
	if w.beforeSwap != nil {
		w.beforeSwap(w.dir)
	}
	if err := os.Symlink(filepath.Base(tsDir), tmp); err != nil {
		return "", fmt.Errorf("link %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, dataDir)); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("swap %q: %w", filepath.Join(w.dir, dataDir), err)
	}
	return filepath.Base(tsDir), nil
}

// mkdirs creates rel under base with mode 0755 past the umask.
func mkdirs(base, rel string) error {
	if rel == "." {
		return nil
	}
	cur := base
	for _, el := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, el)
		err := os.Mkdir(cur, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create %q: %w", cur, err)
		}
		if err := os.Chmod(cur, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// errDiffers stops the walk in holds at the first difference.
var errDiffers = errors.New("content differs")

// holds reports whether version directory ts has exactly files, with their
// content, mode and group: then there is nothing to write.
func (w atomicWriter) holds(ts string, files payload) bool {
	seen := 0
	err := filepath.WalkDir(ts, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(ts, path)
		if err != nil {
			return err
		}
		want, ok := files[rel]
		if !ok || !d.Type().IsRegular() {
			return errDiffers
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		wantMode := want.mode.Perm()
		if w.fsGroup != nil {
			wantMode = fsGroupMode(want.mode, false, true)
			if st, ok := info.Sys().(*syscall.Stat_t); !ok || int64(st.Gid) != *w.fsGroup {
				return errDiffers
			}
		}
		if info.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky) != wantMode {
			return errDiffers
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want.data) {
			return errDiffers
		}
		seen++
		return nil
	})
	return err == nil && seen == len(files)
}

// link makes every top-level entry of files visible through ..data and
// drops the links of entries that are gone.
func (w atomicWriter) link(files payload) error {
	top := make(map[string]bool)
	for rel := range files {
		first, _, _ := strings.Cut(rel, string(filepath.Separator))
		top[first] = true
	}
	for name := range top {
		link := filepath.Join(w.dir, name)
		target := dataDir + "/" + name
		got, err := os.Readlink(link)
		switch {
		case err == nil && got == target:
			continue
		case err == nil:
			if err := os.Remove(link); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return fmt.Errorf("%q is in the way of the volume's file %q: %w", link, name, err)
		}
		if err := os.Symlink(target, link); err != nil {
			return fmt.Errorf("link %q: %w", link, err)
		}
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || top[e.Name()] || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		// Only links we made: anything else in the directory is not ours.
		if got, err := os.Readlink(filepath.Join(w.dir, e.Name())); err == nil && strings.HasPrefix(got, dataDir+"/") {
			if err := os.Remove(filepath.Join(w.dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeOld deletes every version directory but keep.
func (w atomicWriter) removeOld(keep ...string) error {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") && !slices.Contains(keep, e.Name()) {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) < w.grace {
				continue
			}
			if err := os.RemoveAll(filepath.Join(w.dir, e.Name())); err != nil {
				return fmt.Errorf("remove old version %q: %w", e.Name(), err)
			}
		}
	}
	return nil
}
