package imagevolume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	base := t.TempDir()
	rootfs := filepath.Join(base, "rootfs")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{rootfs + "/usr/bin", rootfs + "/etc/ssl", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{rootfs + "/etc/passwd", rootfs + "/usr/bin/busybox", outside + "/secret"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"bin":       "usr/bin",    // usrmerge, relative
		"sbin":      "/usr/bin",   // absolute: rootfs-relative
		"up":        "../../..",   // climbs past the root: stops at it
		"escape":    outside,      // absolute host path: read inside rootfs
		"loop":      "loop",       // itself
		"etc/certs": "../etc/ssl", // relative from a subdirectory
		"dangling":  "nothing",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		sub     string
		want    string // relative to rootfs
		wantErr bool
	}{
		{"", ".", false},
		{".", ".", false},
		{"etc", "etc", false},
		{"etc/", "etc", false},
		{"./etc//ssl", "etc/ssl", false},
		{"etc/passwd", "etc/passwd", false},
		{"bin", "usr/bin", false},
		{"bin/busybox", "usr/bin/busybox", false},
		{"sbin", "usr/bin", false},
		{"up", ".", false},
		{"up/etc", "etc", false},
		{"etc/certs", "etc/ssl", false},
		{"not-existing", "", true},
		{"etc/passwd/x", "", true},
		{"escape", "", true},        // rootfs has no such path
		{"escape/secret", "", true}, // nor this: never the host's
		{"loop", "", true},
		{"dangling", "", true},
		{"..", "", true},
		{"etc/../..", "", true},
		{"/etc", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.sub, func(t *testing.T) {
			got, err := Resolve(rootfs, tt.sub)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Resolve(%q) = %q, want an error", tt.sub, got)
				}
				var se *SubPathError
				if !errors.As(err, &se) {
					t.Errorf("Resolve(%q) error %v is no SubPathError", tt.sub, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(rootfs, tt.want); got != want {
				t.Errorf("Resolve(%q) = %q, want %q", tt.sub, got, want)
			}
		})
	}
}
