package imagevolume

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tarEntry is a tar entry for a test archive: a header and, for a regular
// file, its content.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func dirEnt(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

func fileEnt(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body: body}
}

func symlinkEnt(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func linkEnt(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func tarOf(t *testing.T, ents ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if err := w.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// snapshot describes every file under dir: type, mode and content or link
// target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link -> " + target
		case fi.IsDir():
			out[rel] = "dir " + fi.Mode().Perm().String()[1:]
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fi.Mode().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExtract(t *testing.T) {
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	setuid := fileEnt("bin/su", "su", 0o4755)
	owned := fileEnt("home/user/file", "mine", 0o640)
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	owned.hdr.ModTime = mtime
	archive := tarOf(t,
		dirEnt("./", 0o755),
		dirEnt("bin/", 0o755),
		fileEnt("bin/busybox", "#!busybox", 0o755),
		linkEnt("bin/ls", "bin/busybox"),
		symlinkEnt("bin/sh", "/bin/busybox"),
		symlinkEnt("bin/rel", "busybox"),
		setuid,
		dirEnt("etc/", 0o755),
		fileEnt("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644),
		// An entry whose directory the archive did not list.
		fileEnt("usr/share/doc/readme", "hi", 0o644),
		dirEnt("home/", 0o755),
		dirEnt("home/user/", 0o700),
		owned,
		dirEnt("ro/", 0o555),
		fileEnt("ro/inside", "in a read-only dir", 0o444),
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8}},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}},
	)
	dir := t.TempDir()
	if err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{Chown: os.Geteuid() == 0}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(dir) })

	want := map[string]string{
		".":                    "dir rwxr-xr-x",
		"bin":                  "dir rwxr-xr-x",
		"bin/busybox":          "-rwxr-xr-x #!busybox",
		"bin/ls":               "-rwxr-xr-x #!busybox",
		"bin/sh":               "link -> /bin/busybox",
		"bin/rel":              "link -> busybox",
		"bin/su":               "urwxr-xr-x su",
		"etc":                  "dir rwxr-xr-x",
		"etc/passwd":           "-rw-r--r-- root:x:0:0::/root:/bin/sh\n",
		"usr":                  "dir rwxr-xr-x",
		"usr/share":            "dir rwxr-xr-x",
		"usr/share/doc":        "dir rwxr-xr-x",
		"usr/share/doc/readme": "-rw-r--r-- hi",
		"home":                 "dir rwxr-xr-x",
		"home/user":            "dir rwx------",
		"home/user/file":       "-rw-r----- mine",
		"ro":                   "dir r-xr-xr-x",
		"ro/inside":            "-r--r--r-- in a read-only dir",
	}
	if diff := cmp.Diff(want, snapshot(t, dir)); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}

	var a, b syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "bin/busybox"), &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(dir, "bin/ls"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino {
		t.Error("bin/ls is not a hard link of bin/busybox")
	}
	fi, err := os.Stat(filepath.Join(dir, "home/user/file"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime = %v, want %v", fi.ModTime(), mtime)
	}
	if os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1000 || st.Gid != 1001 {
			t.Errorf("owner = %d:%d, want 1000:1001", st.Uid, st.Gid)
		}
	}
}

// TestExtractMalicious feeds archives that try to write outside the
// directory: each must fail, or succeed without touching anything outside.
func TestExtractMalicious(t *testing.T) {
	tests := []struct {
		name    string
		ents    func(outside string) []tarEntry
		wantErr bool
		// want, if set, is the tree that must result.
		want map[string]string
	}{
		{"dot-dot name", func(string) []tarEntry { return []tarEntry{fileEnt("../evil", "x", 0o644)} }, true, nil},
		{"dot-dot inside name", func(string) []tarEntry { return []tarEntry{fileEnt("a/../../evil", "x", 0o644)} }, true, nil},
		{"absolute name", func(o string) []tarEntry { return []tarEntry{fileEnt(filepath.Join(o, "evil"), "x", 0o644)} }, true, nil},
		{"absolute directory", func(o string) []tarEntry { return []tarEntry{dirEnt(filepath.Join(o, "evildir")+"/", 0o755)} }, true, nil},
		{"write through an absolute symlink", func(o string) []tarEntry {
			return []tarEntry{symlinkEnt("link", o), fileEnt("link/evil", "x", 0o644)}
		}, true, nil},
		{"write through a relative symlink", func(string) []tarEntry {
			return []tarEntry{symlinkEnt("link", "../outside"), fileEnt("link/evil", "x", 0o644)}
		}, true, nil},
		{"directory through a symlink", func(o string) []tarEntry {
			return []tarEntry{symlinkEnt("link", o), dirEnt("link/evildir/", 0o755)}
		}, true, nil},
		{"hard link out by dot-dot", func(string) []tarEntry { return []tarEntry{linkEnt("hl", "../outside/secret")} }, true, nil},
		{"hard link out by absolute name", func(o string) []tarEntry { return []tarEntry{linkEnt("hl", filepath.Join(o, "secret"))} }, true, nil},
		{"hard link out through a symlink", func(o string) []tarEntry {
			return []tarEntry{symlinkEnt("link", o), linkEnt("hl", "link/secret")}
		}, true, nil},
		{"hard link to a directory", func(string) []tarEntry {
			return []tarEntry{dirEnt("d/", 0o755), linkEnt("hl", "d")}
		}, true, nil},
		{"symlink then a file of its name", func(o string) []tarEntry {
			return []tarEntry{symlinkEnt("x", filepath.Join(o, "secret")), fileEnt("x", "replaced", 0o644)}
		}, false, map[string]string{".": "dir rwx------", "x": "-rw-r--r-- replaced"}},
		{"symlink then a directory of its name", func(o string) []tarEntry {
			return []tarEntry{symlinkEnt("x", o), dirEnt("x/", 0o755), fileEnt("x/f", "in", 0o644)}
		}, false, map[string]string{".": "dir rwx------", "x": "dir rwxr-xr-x", "x/f": "-rw-r--r-- in"}},
		{"symlink then a hard link of its name", func(o string) []tarEntry {
			return []tarEntry{fileEnt("f", "in", 0o644), symlinkEnt("x", filepath.Join(o, "secret")), linkEnt("x", "f")}
		}, false, map[string]string{".": "dir rwx------", "f": "-rw-r--r-- in", "x": "-rw-r--r-- in"}},
		{"directory then a file of its name", func(string) []tarEntry {
			return []tarEntry{dirEnt("d/", 0o755), fileEnt("d", "x", 0o644)}
		}, true, nil},
		{"root as a symlink", func(o string) []tarEntry { return []tarEntry{symlinkEnt("./", o)} }, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			dir := filepath.Join(base, "root")
			for _, d := range []string{outside, dir} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("original"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, base)
			delete(before, "root")

			err := Extract(context.Background(), bytes.NewReader(tarOf(t, tt.ents(outside)...)), dir, ExtractOptions{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Extract error = %v, want error %t", err, tt.wantErr)
			}
			after := snapshot(t, base)
			for p := range after {
				if p == "root" || strings.HasPrefix(p, "root/") {
					delete(after, p)
				}
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("outside the directory (-before +after):\n%s", diff)
			}
			if tt.want != nil {
				if diff := cmp.Diff(tt.want, snapshot(t, dir)); diff != "" {
					t.Errorf("extracted tree (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestExtractCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Extract(ctx, bytes.NewReader(tarOf(t, fileEnt("f", "x", 0o644))), t.TempDir(), ExtractOptions{})
	if err != context.Canceled {
		t.Errorf("Extract with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestExtractCorrupt(t *testing.T) {
	archive := tarOf(t, fileEnt("f", "some content", 0o644))
	err := Extract(context.Background(), bytes.NewReader(archive[:515]), t.TempDir(), ExtractOptions{})
	if err == nil {
		t.Error("Extract of a truncated archive succeeded")
	}
}
