package volume

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Both resolvers agree, on what they open and on what they refuse.
func TestOpenBeneath(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "a", "b"))
	write(t, filepath.Join(dir, "a", "b", "f"), "")
	symlink(t, "a/b", filepath.Join(dir, "ab"))
	symlink(t, "../a", filepath.Join(dir, "a", "self"))
	symlink(t, "loop", filepath.Join(dir, "loop"))
	symlink(t, "../..", filepath.Join(dir, "a", "up2"))
	symlink(t, "/proc/self/root", filepath.Join(dir, "magic"))
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	tests := []struct {
		path  string
		want  string // what it must open, relative to dir; "" for an error
		errno unix.Errno
	}{
		{path: ".", want: "."},
		{path: "ab/f", want: "a/b/f"},
		{path: "a/self/self/b", want: "a/b"},
		{path: "a/b/..", want: "a"},
		{path: "a/up2", errno: unix.EXDEV},
		{path: "..", errno: unix.EXDEV},
		{path: "magic", errno: unix.EXDEV},
		{path: "loop", errno: unix.ELOOP},
		{path: "a/b/f/x", errno: unix.ENOTDIR},
		{path: "a/none", errno: unix.ENOENT},
	}
	resolvers(t, func(t *testing.T, open openBeneathFunc) {
		for _, tt := range tests {
			fd, err := open(root, tt.path)
			if tt.want == "" {
				if err != tt.errno {
					t.Errorf("%s: err = %v, want %v", tt.path, err, tt.errno)
				}
				if err == nil {
					unix.Close(fd)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tt.path, err)
				continue
			}
			var got, want unix.Stat_t
			_ = unix.Fstat(fd, &got)
			unix.Close(fd)
			if err := unix.Stat(filepath.Join(dir, tt.want), &want); err != nil || got.Ino != want.Ino {
				t.Errorf("%s opened inode %d, want %s (%d, %v)", tt.path, got.Ino, tt.want, want.Ino, err)
			}
		}
	})
}
