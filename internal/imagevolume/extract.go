package imagevolume

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// Chown gives each entry the owner the archive names; it needs root.
	// Without it everything belongs to the caller.
	Chown bool
}

// Extract unpacks the tar stream r into dir, an empty directory the caller
// made. The archive is an image's file system and is not trusted: an entry
// named absolutely or with a ".." element is refused, and every write goes
// through an os.Root on dir, so a symlink in the archive (kept verbatim,
// whatever it points at: inside the container it resolves against the
// container's root) can never carry a write outside dir. Hard links must
// name a path inside dir. Modes (setuid, setgid and sticky too), owners
// and modification times are kept; device nodes and FIFOs are skipped, as
// a read-only volume of files has no use for them and making them would
// need more privilege than berth should lend an image.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	x := extractor{root: root, opts: opts}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("extract: read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
	}
	return x.finishDirs()
}

// extractor is the state of one Extract.
type extractor struct {
	root *os.Root
	opts ExtractOptions
	// dirs get their mode and times at the end: a read-only directory
	// must still take its entries, and each entry written bumps its
	// directory's mtime.
	dirs []dirAttrs
}

type dirAttrs struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

// entryName is name as a clean path relative to the root ("." for the
// root itself), or an error for a name that could leave it.
func entryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if path.IsAbs(name) {
		return "", errors.New("absolute name")
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", errors.New(`name contains ".."`)
	}
	return path.Clean(name), nil
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, hdr, mode)
	case tar.TypeReg:
		return x.file(name, hdr, mode, body)
	case tar.TypeSymlink:
		if name == "." {
			return errors.New("the root cannot be a symlink")
		}
		if err := x.replace(name); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		return x.chown(name, hdr)
	case tar.TypeLink:
		return x.link(name, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
}

func (x *extractor) dir(name string, hdr *tar.Header, mode fs.FileMode) error {
	if name != "." {
		fi, err := x.root.Lstat(name)
		switch {
		case err == nil && fi.IsDir():
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if err := x.replace(name); err != nil {
				return err
			}
			if err := x.parent(name); err != nil {
				return err
			}
			if err := x.root.Mkdir(name, 0o700); err != nil {
				return err
			}
		default:
			return err
		}
	}
	if err := x.chown(name, hdr); err != nil {
		return err
	}
	x.dirs = append(x.dirs, dirAttrs{name: name, mode: mode, mtime: hdr.ModTime})
	return nil
}

func (x *extractor) file(name string, hdr *tar.Header, mode fs.FileMode, body io.Reader) error {
	if name == "." {
		return errors.New("the root cannot be a file")
	}
	if err := x.replace(name); err != nil {
		return err
	}
	if err := x.parent(name); err != nil {
		return err
	}
	// O_EXCL: replace removed whatever was there, so nothing (a symlink
	// least of all) is written through.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return x.attrs(name, hdr, mode)
}

func (x *extractor) link(name string, hdr *tar.Header) error {
	target, err := entryName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	fi, err := x.root.Lstat(target)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("hard link to directory %q", hdr.Linkname)
	}
	if target == name {
		return nil
	}
	if err := x.replace(name); err != nil {
		return err
	}
	if err := x.parent(name); err != nil {
		return err
	}
	return x.root.Link(target, name)
}

// replace removes a non-directory at name, as a later entry of an archive
// replaces an earlier one; a directory stays (and is an error for a
// non-directory entry, caught when it is created).
func (x *extractor) replace(name string) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s exists as a directory", name)
	}
	return x.root.Remove(name)
}

// parent makes the directories above name that the archive did not list
// before it; an archive lists them first, so this is rarely needed.
func (x *extractor) parent(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	return x.root.MkdirAll(dir, 0o755)
}

func (x *extractor) chown(name string, hdr *tar.Header) error {
	if !x.opts.Chown {
		return nil
	}
	return x.root.Lchown(name, hdr.Uid, hdr.Gid)
}

// attrs sets a regular file's owner, then its mode (a chown clears the
// setuid and setgid bits), then its times.
func (x *extractor) attrs(name string, hdr *tar.Header, mode fs.FileMode) error {
	if err := x.chown(name, hdr); err != nil {
		return err
	}
	if err := x.root.Chmod(name, mode); err != nil {
		return err
	}
	return x.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
}

func (x *extractor) finishDirs() error {
	// Deepest first: setting a directory's times must come after its
	// children's, which would change them.
	for _, d := range slices.Backward(x.dirs) {
		if err := x.root.Chmod(d.name, d.mode); err != nil {
			return fmt.Errorf("extract %q: %w", d.name, err)
		}
		if err := x.root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return fmt.Errorf("extract %q: %w", d.name, err)
		}
	}
	return nil
}
