package volume

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

func TestEmptyDirDisk(t *testing.T) {
	m := newTestManager(t)
	size := resource.MustParse("1Gi")
	pod := newPod("uid-ed", corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &size}}})
	vols, warnings := prepare(t, m, pod, podenv.Objects{})
	v := vols["scratch"]
	want := filepath.Join(m.root, "uid-ed", "volumes", pluginEmptyDir, "scratch")
	if v.HostPath != want || v.ReadOnly {
		t.Fatalf("volume = %+v, want %s read-write", v, want)
	}
	info, err := os.Stat(v.HostPath)
	if err != nil || info.Mode().Perm() != 0o777 {
		t.Fatalf("stat = %v %v, want 0777 dir", info, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "spec.volumes[0] (scratch): emptyDir.sizeLimit 1Gi is not enforced") {
		t.Errorf("warnings = %q", warnings)
	}
	if err := os.WriteFile(filepath.Join(v.HostPath, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	prepare(t, m, pod, podenv.Objects{})
	if got := readFile(t, filepath.Join(v.HostPath, "keep")); got != "x" {
		t.Errorf("content after second Prepare = %q, want kept", got)
	}
}

func TestEmptyDirMemory(t *testing.T) {
	m := newTestManager(t)
	size := resource.MustParse("3Mi")
	pod := newPod("uid-mem", corev1.Volume{Name: "shm", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}})
	vols, _, err := prepareErr(t, m, pod, podenv.Objects{})
	skipIfNoMount(t, err)
	if err != nil {
		t.Fatal(err)
	}
	dir := vols["shm"].HostPath
	fstype, opts, ok := mountInfo(t, dir)
	if !ok || fstype != "tmpfs" || !strings.Contains(opts, "size=3072k") {
		t.Fatalf("mount at %s = %v %q %q, want tmpfs size=3072k", dir, ok, fstype, opts)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("in memory"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Idempotent: no second tmpfs stacked on the first, content kept.
	prepare(t, m, pod, podenv.Objects{})
	if got := readFile(t, filepath.Join(dir, "f")); got != "in memory" {
		t.Errorf("content = %q", got)
	}
	if mps, _ := mountsUnder(dir); len(mps) != 1 {
		t.Errorf("mounts at %s = %q, want one", dir, mps)
	}
	if err := m.Cleanup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := mountInfo(t, dir); ok {
		t.Errorf("%s still mounted after Cleanup", dir)
	}
	if _, err := os.Stat(filepath.Join(m.root, "uid-mem")); !os.IsNotExist(err) {
		t.Errorf("pod dir after Cleanup: %v, want gone", err)
	}
	if err := m.Cleanup(context.Background(), pod); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

func TestMemorySize(t *testing.T) {
	q := resource.MustParse
	node := podenv.Node{Allocatable: corev1.ResourceList{corev1.ResourceMemory: q("1Gi")}}
	withLimits := func(limits ...string) *corev1.Pod {
		pod := &corev1.Pod{}
		for _, l := range limits {
			c := corev1.Container{}
			if l != "" {
				c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: q(l)}
			}
			pod.Spec.Containers = append(pod.Spec.Containers, c)
		}
		return pod
	}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		node  podenv.Node
		limit *resource.Quantity
		want  int64
	}{
		{"node allocatable", withLimits("", "10Mi"), node, nil, 1 << 30},
		{"pod limit", withLimits("10Mi", "20Mi"), node, nil, 30 << 20},
		{"sizeLimit smaller", withLimits("10Mi", "20Mi"), node, ptr(q("1Mi")), 1 << 20},
		{"sizeLimit larger is capped", withLimits("10Mi"), node, ptr(q("2Gi")), 10 << 20},
		{"nothing known", withLimits(""), podenv.Node{}, nil, 0},
		{"only sizeLimit", withLimits(""), podenv.Node{}, ptr(q("5Mi")), 5 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memorySize(tt.pod, tt.node, tt.limit); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	block := findBlockDevice()

	tests := []struct {
		name    string
		path    string
		typ     corev1.HostPathType
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "no check, missing is fine", path: filepath.Join(dir, "nothing"), typ: corev1.HostPathUnset},
		{name: "directory", path: dir, typ: corev1.HostPathDirectory},
		{name: "directory missing", path: filepath.Join(dir, "nope"), typ: corev1.HostPathDirectory,
			wantErr: `spec.volumes[0].hostPath.type (host): Directory: "` + dir + `/nope" does not exist`},
		{name: "directory is a file", path: file, typ: corev1.HostPathDirectory, wantErr: `Directory: "` + file + `" is not a directory`},
		{name: "directory or create", path: filepath.Join(dir, "made/deep"), typ: corev1.HostPathDirectoryOrCreate,
			check: func(t *testing.T) {
				info, err := os.Stat(filepath.Join(dir, "made/deep"))
				if err != nil || !info.IsDir() || info.Mode().Perm() != 0o755 {
					t.Errorf("created %v %v, want 0755 dir", info, err)
				}
			}},
		{name: "directory or create on a file", path: file, typ: corev1.HostPathDirectoryOrCreate, wantErr: "is not a directory"},
		{name: "file", path: file, typ: corev1.HostPathFile},
		{name: "file is a dir", path: dir, typ: corev1.HostPathFile, wantErr: `File: "` + dir + `" is not a file`},
		{name: "file or create", path: filepath.Join(dir, "new"), typ: corev1.HostPathFileOrCreate,
			check: func(t *testing.T) {
				info, err := os.Stat(filepath.Join(dir, "new"))
				if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o644 {
					t.Errorf("created %v %v, want 0644 file", info, err)
				}
			}},
		{name: "file or create without parent", path: filepath.Join(dir, "no/parent"), typ: corev1.HostPathFileOrCreate, wantErr: "FileOrCreate: create"},
		{name: "socket", path: sock, typ: corev1.HostPathSocket},
		{name: "socket is a file", path: file, typ: corev1.HostPathSocket, wantErr: "is not a socket"},
		{name: "char device", path: "/dev/null", typ: corev1.HostPathCharDev},
		{name: "char device is a socket", path: sock, typ: corev1.HostPathCharDev, wantErr: `CharDevice: "` + sock + `" is not a character device`},
		{name: "block device is a char device", path: "/dev/null", typ: corev1.HostPathBlockDev, wantErr: "is not a block device"},
		{name: "block device", path: block, typ: corev1.HostPathBlockDev},
		{name: "unknown type", path: dir, typ: "Fifo", wantErr: `spec.volumes[0].hostPath.type (host): "Fifo" is not a hostPath type`},
		{name: "relative path", path: "var/log", wantErr: `spec.volumes[0].hostPath.path (host): "var/log" must be an absolute path`},
		{name: "dot dot", path: "/var/../etc", wantErr: "must not contain '..'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == "" && tt.name == "block device" {
				t.Skip("no block device under /dev")
			}
			m := newTestManager(t)
			pod := newPod("uid-hp", corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: tt.path, Type: &tt.typ}}})
			vols, _, err := prepareErr(t, m, pod, podenv.Objects{})
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := vols["host"]; got.HostPath != tt.path || got.ReadOnly || got.Relabel {
				t.Errorf("volume = %+v", got)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	// Cleanup must never touch a hostPath.
	if _, err := os.Stat(file); err != nil {
		t.Errorf("hostPath file after Cleanup: %v", err)
	}
}

func findBlockDevice() string {
	entries, _ := os.ReadDir("/dev")
	for _, e := range entries {
		p := filepath.Join("/dev", e.Name())
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			return p
		}
	}
	return ""
}

func TestUnsupportedVolume(t *testing.T) {
	m := newTestManager(t)
	pod := newPod("uid-un",
		corev1.Volume{Name: "ok", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}})
	_, _, err := prepareErr(t, m, pod, podenv.Objects{})
	if err == nil || err.Error() != "spec.volumes[1] (data): volume type persistentVolumeClaim is not supported by berth run" {
		t.Errorf("err = %v", err)
	}
	for _, tt := range []struct {
		name string
		src  corev1.VolumeSource
		want string
	}{
		{"image", corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "x"}}, "volume type image is not supported"},
		{"nfs", corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{}}, "volume type nfs is not supported"},
		{"none", corev1.VolumeSource{}, "volume type (none set) is not supported"},
		{"hugepages", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumHugePages}},
			`spec.volumes[0].emptyDir.medium (v): medium "HugePages" is not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := prepareErr(t, m, newPod("uid-"+tt.name, corev1.Volume{Name: "v", VolumeSource: tt.src}), podenv.Objects{})
			wantErr(t, err, tt.want)
		})
	}
	t.Run("duplicate name", func(t *testing.T) {
		v := corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
		_, _, err := prepareErr(t, m, newPod("uid-dup", v, v), podenv.Objects{})
		wantErr(t, err, `spec.volumes[1].name: duplicate volume name "v"`)
	})
	t.Run("bad uid", func(t *testing.T) {
		_, _, err := m.Prepare(context.Background(), newPod("../x"), podenv.Objects{}, testNode())
		wantErr(t, err, `metadata.uid: "../x" must not contain '/'`)
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	m, err := New(Options{Root: root, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	orCreate := corev1.HostPathDirectoryOrCreate
	missing := filepath.Join(t.TempDir(), "made-by-nobody")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: missing, Type: &orCreate}}},
		{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
		{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
	}}}
	objs := podenv.Objects{
		ConfigMaps: map[string]*corev1.ConfigMap{"cm": {Data: map[string]string{"k": "v"}}},
		Secrets:    map[string]*corev1.Secret{"sec": {Data: map[string][]byte{"k": []byte("v")}}},
	}
	vols, _, err := m.Prepare(t.Context(), pod, objs, podenv.Node{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 4 || vols["h"].HostPath != missing || !strings.HasPrefix(vols["s"].HostPath, root) || !vols["c"].ReadOnly {
		t.Errorf("volumes = %+v", vols)
	}
	for _, p := range []string{root, missing} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a dry run (%v)", p, err)
		}
	}
	// What can be checked without changes still is: a missing key.
	objs.ConfigMaps["cm"] = &corev1.ConfigMap{}
	pod.Spec.Volumes[2].ConfigMap.Items = []corev1.KeyToPath{{Key: "k", Path: "k"}}
	if _, _, err := m.Prepare(t.Context(), pod, objs, podenv.Node{}); err == nil {
		t.Error("a dry run accepted a missing configMap key")
	}
}
