package volume

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

func objects() podenv.Objects {
	return podenv.Objects{
		ConfigMaps: map[string]*corev1.ConfigMap{"cfg": {
			ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
			Data:       map[string]string{"app.conf": "port=80", "level": "debug"},
			BinaryData: map[string][]byte{"logo.bin": {0, 1, 2}},
		}},
		Secrets: map[string]*corev1.Secret{"sec": {
			ObjectMeta: metav1.ObjectMeta{Name: "sec"},
			Data:       map[string][]byte{"user": []byte("root"), "pass": []byte("old")},
			StringData: map[string]string{"pass": "new"},
		}},
	}
}

// tree reads a volume as a container would: every visible path (following
// the links) with its content and mode.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	root, err := filepath.EvalSymlinks(filepath.Join(dir, dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		// Through the visible link, not the version directory.
		visible := filepath.Join(dir, rel)
		info, err := os.Stat(visible)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(visible)
		out[rel] = info.Mode().Perm().String() + " " + string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestContentVolumes(t *testing.T) {
	q := resource.MustParse
	tests := []struct {
		name    string
		src     corev1.VolumeSource
		want    map[string]string
		wantErr string
		notFnd  bool
	}{
		{
			name: "configMap all keys incl binaryData",
			src:  corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
			want: map[string]string{"app.conf": "-rw-r--r-- port=80", "level": "-rw-r--r-- debug", "logo.bin": "-rw-r--r-- \x00\x01\x02"},
		},
		{
			name: "configMap items, modes, nested path",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr(int32(0o600)),
				Items: []corev1.KeyToPath{{Key: "level", Path: "conf/d/level.txt"}, {Key: "app.conf", Path: "app", Mode: ptr(int32(0o755))}},
			}},
			want: map[string]string{"conf/d/level.txt": "-rw------- debug", "app": "-rwxr-xr-x port=80"},
		},
		{
			name: "configMap optional and missing",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
			want: map[string]string{},
		},
		{
			name: "configMap missing",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}},
			wantErr: `spec.volumes[0].configMap.name (v): configMap "gone": not found`, notFnd: true,
		},
		{
			name: "configMap item key missing",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
				Items:                []corev1.KeyToPath{{Key: "nope", Path: "x"}}}},
			wantErr: `spec.volumes[0].configMap.items[0].key (v): configMap "cfg" key "nope": not found`, notFnd: true,
		},
		{
			name: "configMap item key missing but optional",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Optional: ptr(true),
				Items: []corev1.KeyToPath{{Key: "nope", Path: "x"}, {Key: "level", Path: "l"}}}},
			want: map[string]string{"l": "-rw-r--r-- debug"},
		},
		{
			name: "bad mode",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr(int32(0o1777))}},
			wantErr: `spec.volumes[0].configMap.defaultMode (v): 01777 must be between 0 and 0777`,
		},
		{
			name: "secret data and stringData",
			src:  corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}},
			want: map[string]string{"user": "-rw-r--r-- root", "pass": "-rw-r--r-- new"},
		},
		{
			name:    "secret missing",
			src:     corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: ptr(false)}},
			wantErr: `spec.volumes[0].secret.name (v): secret "nope": not found`, notFnd: true,
		},
		{
			name: "downwardAPI",
			src: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "team", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['team']"}},
				{Path: "meta/name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}, Mode: ptr(int32(0o400))},
				{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: q("1Mi")}},
				{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: q("1m")}},
			}}},
			want: map[string]string{"labels": `-rw-r--r-- app="web"`, "team": "-rw-r--r-- infra", "meta/name": "-r-------- web",
				"mem": "-rw-r--r-- 64", "cpu": "-rw-r--r-- 2000"},
		},
		{
			name: "downwardAPI spec field rejected",
			src: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "n", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}},
			wantErr: `spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath (v): "spec.nodeName" is not supported in a downwardAPI volume`,
		},
		{
			name: "downwardAPI resource without container",
			src: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "c", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}},
			wantErr: `spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName (v): must be set in a volume`,
		},
		{
			name: "projected",
			src: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr(int32(0o440)), Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
					Items: []corev1.KeyToPath{{Key: "level", Path: "cfg/level"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"},
					Items: []corev1.KeyToPath{{Key: "user", Path: "sec/user", Mode: ptr(int32(0o400))}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "podname", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
			}}},
			want: map[string]string{"cfg/level": "-r--r----- debug", "sec/user": "-r-------- root", "podname": "-r--r----- web"},
		},
		{
			name: "projected service account token",
			src: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{DownwardAPI: &corev1.DownwardAPIProjection{}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}},
			wantErr: `spec.volumes[0].projected.sources[1].serviceAccountToken (v): not supported by berth run`,
		},
		{
			name: "projected path conflict",
			src: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
					Items: []corev1.KeyToPath{{Key: "level", Path: "x"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"},
					Items: []corev1.KeyToPath{{Key: "user", Path: "x/y"}}}}}}},
			wantErr: `spec.volumes[0].projected.sources[1].secret.items[0].path (v): path "x/y" conflicts with "x" from projected.sources[0].configMap.items[0].path`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t)
			pod := newPod("uid-c", corev1.Volume{Name: "v", VolumeSource: tt.src})
			pod.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = q("2")
			vols, _, err := prepareErr(t, m, pod, objects())
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				if tt.notFnd != errors.Is(err, podenv.ErrNotFound) {
					t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tt.notFnd, tt.notFnd)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !vols["v"].ReadOnly || !vols["v"].Relabel {
				t.Errorf("volume %+v, want read-only", vols["v"])
			}
			if diff := cmp.Diff(tt.want, tree(t, vols["v"].HostPath)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretInMemory(t *testing.T) {
	m := newTestManager(t)
	pod := newPod("uid-s", corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}})
	vols, _, err := prepareErr(t, m, pod, objects())
	skipIfNoMount(t, err)
	if err != nil {
		t.Fatal(err)
	}
	// Sized to the pod's memory limit, 64Mi.
	if fstype, opts, ok := mountInfo(t, vols["s"].HostPath); !ok || fstype != "tmpfs" || !strings.Contains(opts, "size=65536k") {
		t.Errorf("secret volume mount = %v %q %q, want tmpfs size=65536k", ok, fstype, opts)
	}
}

func TestItemPathConfined(t *testing.T) {
	bad := []struct{ path, want string }{
		{"/etc/passwd", "must be a relative path"},
		{"../escape", "must not contain '..'"},
		{"a/../../b", "must not contain '..'"},
		{"..data/x", "must not start with '..'"},
		{"..hidden", "must not start with '..'"},
		{"", "must not be empty"},
		{"./", "must name a file"},
	}
	for _, tt := range bad {
		t.Run(tt.path, func(t *testing.T) {
			m := newTestManager(t)
			pod := newPod("uid-p", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
				Items:                []corev1.KeyToPath{{Key: "level", Path: tt.path}}}}})
			_, _, err := prepareErr(t, m, pod, objects())
			wantErr(t, err, "spec.volumes[0].configMap.items[0].path (v): path "+`"`+tt.path+`": `+tt.want)
		})
	}
	t.Run("key used as path", func(t *testing.T) {
		m := newTestManager(t)
		objs := objects()
		objs.ConfigMaps["cfg"].Data["../../x"] = "evil"
		pod := newPod("uid-k", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
		_, _, err := prepareErr(t, m, pod, objs)
		wantErr(t, err, `spec.volumes[0].configMap (v): path "../../x": must not contain '..'`)
		if _, err := os.Stat(filepath.Join(m.root, "x")); !os.IsNotExist(err) {
			t.Errorf("escaped file written: %v", err)
		}
	})
}

func TestFSGroup(t *testing.T) {
	m := newTestManager(t)
	pod := newPod("uid-g",
		corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr(int32(0o600))}}},
		corev1.Volume{Name: "ed", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(4321))}
	vols, _ := prepare(t, m, pod, objects())
	check := func(path string, wantMode fs.FileMode) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Gid != 4321 || fs.FileMode(st.Mode&0o7777) != wantMode {
			t.Errorf("%s: gid %d mode %#o, want 4321 %#o", path, st.Gid, st.Mode&0o7777, wantMode)
		}
	}
	check(filepath.Join(vols["cm"].HostPath, "level"), 0o640)
	check(filepath.Join(vols["ed"].HostPath), 0o2777)
	// Unchanged content and group: no rewrite.
	before, _ := os.Readlink(filepath.Join(vols["cm"].HostPath, dataDir))
	prepare(t, m, pod, objects())
	after, _ := os.Readlink(filepath.Join(vols["cm"].HostPath, dataDir))
	if before != after {
		t.Errorf("unchanged volume rewritten: %s -> %s", before, after)
	}
}
