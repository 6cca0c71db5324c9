package containerlog

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func newTestManager(t *testing.T, src Source) *Manager {
	t.Helper()
	m, err := New(Options{Docker: src, StateDir: filepath.Join(t.TempDir(), "state"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// testLogger logs to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestPrepareCreates(t *testing.T) {
	old := syscall.Umask(0o077) // modes must not depend on berth's umask
	defer syscall.Umask(old)
	m := newTestManager(t, newFakeDocker())
	root := t.TempDir()
	path := filepath.Join(root, "pods", "ns_pod_uid", "ctr", "0.log")
	if err := m.Prepare(path); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		filepath.Join(root, "pods"):                               os.ModeDir | 0o755,
		filepath.Join(root, "pods", "ns_pod_uid"):                 os.ModeDir | 0o755,
		filepath.Join(root, "pods", "ns_pod_uid", "ctr"):          os.ModeDir | 0o755,
		filepath.Join(root, "pods", "ns_pod_uid", "ctr", "0.log"): 0o640,
	} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	// Again: the file exists and keeps its content.
	if err := os.WriteFile(path, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Prepare(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "kept\n" {
		t.Errorf("content %q after a second Prepare", b)
	}
	fi, _ := os.Stat(filepath.Join(m.stateDir))
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v", fi.Mode())
	}
}

func TestPrepareRefusesSymlinks(t *testing.T) {
	m := newTestManager(t, newFakeDocker())
	root := t.TempDir()
	elsewhere := t.TempDir()
	mustSymlink := func(target, link string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(elsewhere, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSymlink(elsewhere, filepath.Join(root, "a", "linkdir"))
	mustSymlink(secret, filepath.Join(root, "b", "0.log"))
	mustSymlink(filepath.Join(root, "nowhere"), filepath.Join(root, "c", "dangling.log"))
	mustSymlink(elsewhere, filepath.Join(root, "d", "linkdir"))

	cases := map[string]string{
		"symlinked directory":           filepath.Join(root, "a", "linkdir", "0.log"),
		"symlinked directory, deeper":   filepath.Join(root, "a", "linkdir", "new", "0.log"),
		"symlinked final file":          filepath.Join(root, "b", "0.log"),
		"dangling symlinked final file": filepath.Join(root, "c", "dangling.log"),
		"symlinked directory, existing": filepath.Join(root, "d", "linkdir", "secret"),
	}
	for _, walk := range []bool{false, true} {
		if walk {
			// A kernel without openat2: the O_NOFOLLOW walk refuses too.
			openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
			defer func() { openat2 = unix.Openat2 }()
		}
		for name, path := range cases {
			t.Run(fmt.Sprintf("%s/walk=%v", name, walk), func(t *testing.T) {
				err := m.Prepare(path)
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Prepare(%s) = %v, want an invalid argument naming the path", path, err)
				}
				t.Log(err)
				if err := m.Start(t.Context(), "c1", path); !errdefs.IsInvalidArgument(err) {
					t.Fatalf("Start(%s) = %v, want an invalid argument", path, err)
				}
			})
		}
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 1 {
		t.Errorf("something was created through a symlink: %v", entries)
	}
	if b, _ := os.ReadFile(secret); string(b) != "x" {
		t.Errorf("the symlink target was written")
	}
}

func TestPrepareRefusesBadPaths(t *testing.T) {
	m := newTestManager(t, newFakeDocker())
	root := t.TempDir()
	fifo := filepath.Join(root, "fifo.log")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "dir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"relative/0.log",
		"",
		"/",
		root + "/../x/0.log",
		root + "/./0.log",
		root + "//0.log",
		root + "/0.log/",
		fifo,
		filepath.Join(root, "dir.log"),
		filepath.Join(root, "file", "0.log"),
	} {
		if err := m.Prepare(path); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Prepare(%q) = %v, want an invalid argument", path, err)
		}
	}
}

func TestWalkDirCreates(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "x", "y")
	fd, err := walkDir(dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("walkDir did not create %s: %v", dir, err)
	}
}
