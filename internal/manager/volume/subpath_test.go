package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
	"golang.org/x/sys/unix"
)

// resolvers runs f with each way of opening below a volume root: openat2
// where this kernel has it, and the user-space walk older kernels get.
func resolvers(t *testing.T, f func(t *testing.T, open openBeneathFunc)) {
	t.Run("openat2", func(t *testing.T) {
		if fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_PATH, Resolve: unix.RESOLVE_BENEATH}); err != nil {
			t.Skipf("no openat2 here: %v", err)
		} else {
			unix.Close(fd)
		}
		f(t, openat2Beneath)
	})
	t.Run("walk", func(t *testing.T) { f(t, walkBeneath) })
}

// subPathFixture is a pod with an emptyDir "data", a configMap "cm" and a
// hostPath "host", prepared, with a tree a container could have made in
// data:
//
//	dir/marker            "in-dir"
//	file                  "content"
//	existing/up    -> <outside> by a relative path
//	inner          -> existing
//	around         -> existing/../dir
//	escape         -> <outside>
//	root           -> /
type subPathFixture struct {
	m       *Manager
	pod     *corev1.Pod
	vols    map[string]Volume
	data    string
	outside string
	host    string
}

func newSubPathFixture(t *testing.T, open openBeneathFunc) *subPathFixture {
	t.Helper()
	m := newTestManager(t)
	m.openBeneath = open
	f := &subPathFixture{m: m, outside: t.TempDir(), host: t.TempDir()}
	f.pod = newPod("uid-sub",
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: f.host}}},
	)
	f.vols, _ = prepare(t, m, f.pod, objects())
	f.data = f.vols["data"].HostPath
	mkdir(t, filepath.Join(f.data, "dir"))
	mkdir(t, filepath.Join(f.data, "existing"))
	mkdir(t, filepath.Join(f.host, "kept"))
	write(t, filepath.Join(f.data, "dir", "marker"), "in-dir")
	write(t, filepath.Join(f.data, "file"), "content")
	write(t, filepath.Join(f.host, "kept", "k"), "k")
	up, err := filepath.Rel(filepath.Join(f.data, "existing"), f.outside)
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, up, filepath.Join(f.data, "existing", "up"))
	symlink(t, "existing", filepath.Join(f.data, "inner"))
	symlink(t, "existing/../dir", filepath.Join(f.data, "around"))
	symlink(t, f.outside, filepath.Join(f.data, "escape"))
	symlink(t, "/", filepath.Join(f.data, "root"))
	return f
}

// mounts runs Mounts for one volumeMount of a container named ctr.
func (f *subPathFixture) mounts(t *testing.T, ctr string, vm corev1.VolumeMount) (string, error) {
	t.Helper()
	c := &corev1.Container{Name: ctr, VolumeMounts: []corev1.VolumeMount{vm}}
	got, err := f.m.Mounts(context.Background(), f.pod, c, f.vols, podenv.MapVars(map[string]string{"POD": "web-0"}))
	if err != nil {
		return "", err
	}
	return got[0].HostPath, nil
}

func (f *subPathFixture) target(ctr, vol string) string {
	return filepath.Join(f.m.root, string(f.pod.UID), subPathDir, vol, ctr, "0")
}

func TestSubPathBind(t *testing.T) {
	resolvers(t, func(t *testing.T, open openBeneathFunc) {
		f := newSubPathFixture(t, open)
		tests := []struct {
			name    string
			vm      corev1.VolumeMount
			want    map[string]string // path below the target -> content; "" the target itself
			made    string            // a directory Mounts must have made in data
			wantErr string
		}{
			{name: "dir", vm: corev1.VolumeMount{Name: "data", SubPath: "dir"}, want: map[string]string{"marker": "in-dir"}},
			{name: "file", vm: corev1.VolumeMount{Name: "data", SubPath: "file"}, want: map[string]string{"": "content"}},
			{name: "created", vm: corev1.VolumeMount{Name: "data", SubPath: "a/b"}, want: map[string]string{}, made: "a/b"},
			{name: "created through inner link", vm: corev1.VolumeMount{Name: "data", SubPath: "inner/new"}, want: map[string]string{}, made: "existing/new"},
			{name: "subPathExpr", vm: corev1.VolumeMount{Name: "data", SubPathExpr: "logs/$(POD)"}, want: map[string]string{}, made: "logs/web-0"},
			{name: "link staying inside", vm: corev1.VolumeMount{Name: "data", SubPath: "around"}, want: map[string]string{"marker": "in-dir"}},
			{name: "configMap key", vm: corev1.VolumeMount{Name: "cm", SubPath: "app.conf"}, want: map[string]string{"": "port=80"}},
			{name: "configMap data dir", vm: corev1.VolumeMount{Name: "cm", SubPath: "..data"}, want: map[string]string{"level": "debug"}},
			{name: "hostPath", vm: corev1.VolumeMount{Name: "host", SubPath: "kept"}, want: map[string]string{"k": "k"}},
			{name: "absolute link out", vm: corev1.VolumeMount{Name: "data", SubPath: "escape"},
				wantErr: `volumeMounts[0].subPath "escape": "escape" resolves outside the volume`},
			{name: "relative link out", vm: corev1.VolumeMount{Name: "data", SubPath: "existing/up/new"},
				wantErr: `"existing/up" resolves outside the volume`},
			{name: "link to host root", vm: corev1.VolumeMount{Name: "data", SubPathExpr: "root/etc"},
				wantErr: `volumeMounts[0].subPathExpr "root/etc": "root" resolves outside the volume`},
			{name: "through a file", vm: corev1.VolumeMount{Name: "data", SubPath: "file/x"}, wantErr: "not a directory"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctr := "c" + string(rune('a'+i))
				tt.vm.MountPath = "/mnt"
				got, err := f.mounts(t, ctr, tt.vm)
				target := f.target(ctr, tt.vm.Name)
				if tt.wantErr != "" {
					wantErr(t, err, tt.wantErr)
					if _, err := os.Lstat(target); !os.IsNotExist(err) {
						t.Errorf("bind target made for a refused subPath: %v", err)
					}
					if n := mountCount(t, target); n != 0 {
						t.Errorf("%d mounts on %s", n, target)
					}
					if entries, _ := os.ReadDir(f.outside); len(entries) != 0 {
						t.Errorf("made outside the volume: %v", entries)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != target {
					t.Errorf("HostPath = %q, want %q", got, target)
				}
				if n := mountCount(t, target); n != 1 {
					t.Errorf("%d mounts on %s, want 1", n, target)
				}
				if tt.made != "" {
					info, err := os.Lstat(filepath.Join(f.data, tt.made))
					if err != nil || !info.IsDir() || info.Mode().Perm() != 0o777 {
						t.Errorf("made %s = %v %v, want a 0777 directory like the volume", tt.made, info, err)
					}
				}
				for rel, want := range tt.want {
					if got := readFile(t, filepath.Join(target, rel)); got != want {
						t.Errorf("%s = %q, want %q", rel, got, want)
					}
				}
				if len(tt.want) == 0 {
					if entries, err := os.ReadDir(target); err != nil || len(entries) != 0 {
						t.Errorf("new subPath shows %v %v, want an empty directory", entries, err)
					}
				}
			})
		}
	})
}

// The window the kubelet's CVE-2017-1002101 was about: a container swaps
// the subPath for a link to / after it was checked.
func TestSubPathSwapBeforeBind(t *testing.T) {
	resolvers(t, func(t *testing.T, open openBeneathFunc) {
		f := newSubPathFixture(t, open)
		f.m.beforeBind = func(p string) {
			if err := os.Rename(p, p+".orig"); err != nil {
				t.Fatal(err)
			}
			symlink(t, "/", p)
		}
		got, err := f.mounts(t, "app", corev1.VolumeMount{Name: "data", MountPath: "/mnt", SubPath: "dir"})
		if err != nil {
			t.Fatal(err)
		}
		checkShowsDir(t, got, filepath.Join(f.data, "dir.orig"))
	})
}

func TestSubPathSwapAfterMounts(t *testing.T) {
	resolvers(t, func(t *testing.T, open openBeneathFunc) {
		f := newSubPathFixture(t, open)
		vm := corev1.VolumeMount{Name: "data", MountPath: "/mnt", SubPath: "dir"}
		got, err := f.mounts(t, "app", vm)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(f.data, "dir")
		if err := os.Rename(dir, dir+".orig"); err != nil {
			t.Fatal(err)
		}
		symlink(t, "/", dir)
		checkShowsDir(t, got, dir+".orig")
		// The next start refuses the link and leaves the old bind alone.
		_, err = f.mounts(t, "app", vm)
		wantErr(t, err, `"dir" resolves outside the volume`)
		checkShowsDir(t, got, dir+".orig")
	})
}

// checkShowsDir fails unless target is a bind of dir, not the host's /.
func checkShowsDir(t *testing.T, target, dir string) {
	t.Helper()
	if got := readFile(t, filepath.Join(target, "marker")); got != "in-dir" {
		t.Errorf("target marker = %q", got)
	}
	if _, err := os.Stat(filepath.Join(target, "etc")); !os.IsNotExist(err) {
		t.Errorf("target shows the host's /: %v", err)
	}
	a, err1 := os.Stat(target)
	b, err2 := os.Stat(dir)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("target is not %s (%v, %v)", dir, err1, err2)
	}
}

func TestSubPathIdempotent(t *testing.T) {
	f := newSubPathFixture(t, walkBeneath)
	vm := corev1.VolumeMount{Name: "data", MountPath: "/mnt", SubPath: "file"}
	first, err := f.mounts(t, "app", vm)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.mounts(t, "app", vm)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("second HostPath %q, first %q", second, first)
	}
	if n := mountCount(t, first); n != 1 {
		t.Errorf("%d mounts on %s after two Mounts, want 1", n, first)
	}
}

// A configMap key's file is replaced on update; the next start binds the
// new one instead of stacking a second mount.
func TestSubPathRebindsUpdatedKey(t *testing.T) {
	f := newSubPathFixture(t, walkBeneath)
	f.m.versionGrace = 0
	vm := corev1.VolumeMount{Name: "cm", MountPath: "/etc/app.conf", SubPath: "app.conf"}
	target, err := f.mounts(t, "app", vm)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects()
	objs.ConfigMaps["cfg"].Data["app.conf"] = "port=8080"
	if _, _, err := f.m.Prepare(context.Background(), f.pod, objs, testNode()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, target); got != "port=80" {
		t.Errorf("before restart the bind shows %q, want the old file", got)
	}
	if _, err := f.mounts(t, "app", vm); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, target); got != "port=8080" {
		t.Errorf("after restart the bind shows %q", got)
	}
	if n := mountCount(t, target); n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, target)
	}
}

// Cleanup unmounts the binds before it removes anything: a bind of a
// hostPath directory still mounted would have RemoveAll empty the host's
// directory.
func TestSubPathCleanup(t *testing.T) {
	f := newSubPathFixture(t, walkBeneath)
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "host", MountPath: "/h", SubPath: "kept"},
		{Name: "data", MountPath: "/d", SubPath: "dir"},
		{Name: "data", MountPath: "/f", SubPath: "file"},
		{Name: "cm", MountPath: "/c", SubPath: "level"},
	}}
	if _, err := f.m.Mounts(context.Background(), f.pod, c, f.vols, podenv.MapVars(nil)); err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(f.m.root, string(f.pod.UID))
	if mps, _ := mountsUnder(filepath.Join(podDir, subPathDir)); len(mps) != 4 {
		t.Fatalf("subPath mounts = %q, want 4", mps)
	}
	for i := range 2 {
		if err := f.m.Cleanup(context.Background(), f.pod); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
	}
	if mps, _ := mountsUnder(podDir); len(mps) != 0 {
		t.Errorf("mounts left: %q", mps)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod dir left: %v", err)
	}
	if got := readFile(t, filepath.Join(f.host, "kept", "k")); got != "k" {
		t.Errorf("hostPath content = %q", got)
	}
}

func TestSubPathDryRun(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	m, err := New(Options{Root: root, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	pod := newPod("u1")
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "v", MountPath: "/a"}, {Name: "v", MountPath: "/b", SubPath: "x/y"}}}
	vols := map[string]Volume{"v": {HostPath: filepath.Join(root, "u1", "volumes", pluginEmptyDir, "v")}}
	got, err := m.Mounts(context.Background(), pod, c, vols, podenv.MapVars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "u1", subPathDir, "v", "app", "1"); got[1].HostPath != want {
		t.Errorf("HostPath = %q, want %q", got[1].HostPath, want)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("%s exists after a dry run (%v)", root, err)
	}
}

func mountCount(t *testing.T, path string) int {
	t.Helper()
	mps, err := mountsUnder(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mp := range mps {
		if mp == path {
			n++
		}
	}
	return n
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
