package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// TestMounts covers what needs no subPath bind; subpath_test.go has those.
func TestMounts(t *testing.T) {
	m := newTestManager(t)
	pod := newPod("uid-mounts")
	t.Cleanup(func() {
		if err := m.Cleanup(context.Background(), pod); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	base := t.TempDir()
	data := filepath.Join(base, "data")
	cfg := filepath.Join(base, "cfg")
	file := filepath.Join(base, "file")
	vols := map[string]Volume{
		"data": {HostPath: data, Relabel: true},
		"cfg":  {HostPath: cfg, ReadOnly: true, Relabel: true},
		"file": {HostPath: file},
	}
	env := podenv.MapVars(map[string]string{"POD": "web-0", "EMPTY": ""})
	private := runtimeapi.MountPropagation_PROPAGATION_PRIVATE

	tests := []struct {
		name    string
		vm      corev1.VolumeMount
		priv    bool
		want    *runtimeapi.Mount
		wantErr string
	}{
		{name: "plain", vm: corev1.VolumeMount{Name: "data", MountPath: "/data"},
			want: &runtimeapi.Mount{ContainerPath: "/data", HostPath: data, SelinuxRelabel: true, Propagation: private}},
		{name: "read-only volume", vm: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/cfg"},
			want: &runtimeapi.Mount{ContainerPath: "/etc/cfg", HostPath: cfg, Readonly: true, SelinuxRelabel: true, Propagation: private}},
		{name: "read-only mount", vm: corev1.VolumeMount{Name: "file", MountPath: "/f", ReadOnly: true,
			MountPropagation: ptr(corev1.MountPropagationNone), RecursiveReadOnly: ptr(corev1.RecursiveReadOnlyEnabled)},
			want: &runtimeapi.Mount{ContainerPath: "/f", HostPath: file, Readonly: true, RecursiveReadOnly: true, Propagation: private}},
		{name: "host to container", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(corev1.MountPropagationHostToContainer),
			BindMountOptions: []string{"nosuid", "noexec"}},
			want: &runtimeapi.Mount{ContainerPath: "/d", HostPath: data, SelinuxRelabel: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, MountOptions: []string{"nosuid", "noexec"}}},
		{name: "bidirectional privileged", priv: true, vm: corev1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(corev1.MountPropagationBidirectional)},
			want: &runtimeapi.Mount{ContainerPath: "/d", HostPath: data, SelinuxRelabel: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
		{name: "bidirectional unprivileged", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(corev1.MountPropagationBidirectional)},
			wantErr: `container "app" volumeMounts[0].mountPropagation: Bidirectional is allowed only in a privileged container`},
		{name: "bad propagation", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(corev1.MountPropagationMode("Shared"))},
			wantErr: `.mountPropagation: "Shared" is not one of`},
		{name: "rro needs readOnly", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", RecursiveReadOnly: ptr(corev1.RecursiveReadOnlyEnabled)},
			wantErr: ".recursiveReadOnly: Enabled needs readOnly: true"},
		{name: "bad bind option", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", BindMountOptions: []string{"rw"}},
			wantErr: `.bindMountOptions: "rw" is not one of`},
		{name: "unknown volume", vm: corev1.VolumeMount{Name: "nope", MountPath: "/x"},
			wantErr: `container "app" volumeMounts[0].name: no volume named "nope" in spec.volumes`},
		{name: "relative mountPath", vm: corev1.VolumeMount{Name: "data", MountPath: "x"},
			wantErr: `volumeMounts[0].mountPath: "x" must be an absolute path`},
		{name: "subPath dot dot", vm: corev1.VolumeMount{Name: "data", MountPath: "/s", SubPath: "a/../../x"},
			wantErr: `.subPath "a/../../x": must not contain '..'`},
		{name: "subPath absolute", vm: corev1.VolumeMount{Name: "data", MountPath: "/s", SubPath: "/etc"},
			wantErr: `.subPath "/etc": must be a relative path`},
		{name: "subPathExpr missing var", vm: corev1.VolumeMount{Name: "data", MountPath: "/logs", SubPathExpr: "$(NOPE)/$(EMPTY)/$(POD)"},
			wantErr: `.subPathExpr "$(NOPE)/$(EMPTY)/$(POD)": missing value for EMPTY, NOPE`},
		{name: "subPathExpr escaping", vm: corev1.VolumeMount{Name: "data", MountPath: "/logs", SubPathExpr: "$(POD)/../../x"},
			wantErr: `.subPathExpr "web-0/../../x": must not contain '..'`},
		{name: "subPath and subPathExpr", vm: corev1.VolumeMount{Name: "data", MountPath: "/logs", SubPath: "a", SubPathExpr: "b"},
			wantErr: "mutually exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{tt.vm}}
			if tt.priv {
				c.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
			}
			got, err := m.Mounts(context.Background(), pod, c, vols, env)
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]*runtimeapi.Mount{tt.want}, got, protocmp.Transform()); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
		})
	}
	// Refused subPaths are refused before anything is made.
	if _, err := os.Stat(filepath.Join(m.root, "uid-mounts")); !os.IsNotExist(err) {
		t.Errorf("pod dir made: %v", err)
	}
}

func TestMountsKeepOrder(t *testing.T) {
	vols := map[string]Volume{"a": {HostPath: "/ha"}, "b": {HostPath: "/hb"}}
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "b", MountPath: "/z"}, {Name: "a", MountPath: "/y"}, {Name: "b", MountPath: "/x", ReadOnly: true}}}
	m := newTestManager(t)
	got, err := m.Mounts(context.Background(), newPod("uid-order"), c, vols, podenv.MapVars(nil))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range got {
		paths = append(paths, m.ContainerPath+"="+m.HostPath)
	}
	if diff := cmp.Diff([]string{"/z=/hb", "/y=/ha", "/x=/hb"}, paths); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// Cleanup removes every kind, tmpfs included, and nothing outside.
func TestCleanupLeavesNothing(t *testing.T) {
	m := newTestManager(t)
	host := t.TempDir()
	pod := newPod("uid-all",
		corev1.Volume{Name: "ed", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		corev1.Volume{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}},
		corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
		corev1.Volume{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "n", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		corev1.Volume{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}}}}}},
	)
	other := cmVolumePod("uid-other")
	prepare(t, m, other, objects())
	vols, _, err := prepareErr(t, m, pod, objects())
	skipIfNoMount(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(m.root, "uid-all")
	if mps, _ := mountsUnder(podDir); len(mps) != 3 {
		t.Errorf("mounts = %q, want mem, sec and proj on tmpfs", mps)
	}
	for i := range 2 {
		if err := m.Cleanup(context.Background(), pod); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
	}
	if mps, _ := mountsUnder(podDir); len(mps) != 0 {
		t.Errorf("mounts left: %q", mps)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod dir left: %v", err)
	}
	if got := readFile(t, filepath.Join(vols["hp"].HostPath, "keep")); got != "k" {
		t.Errorf("hostPath content = %q", got)
	}
	if _, err := os.Stat(filepath.Join(m.root, "uid-other")); err != nil {
		t.Errorf("other pod's volumes touched: %v", err)
	}
}
