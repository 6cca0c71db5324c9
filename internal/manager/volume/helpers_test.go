package volume

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-project/berth/internal/manager/podenv"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

// newTestManager returns a Manager rooted in a temp dir; every pod it
// prepares through prepare() is cleaned up before the dir goes.
func newTestManager(t *testing.T) *Manager {
	t.Helper()
	m, err := New(Options{Root: filepath.Join(t.TempDir(), "pods")})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newPod(uid string, vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default", UID: types.UID(uid),
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"team": "infra"},
		},
		Spec: corev1.PodSpec{
			Volumes: vols,
			Containers: []corev1.Container{{
				Name: "app",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
	}
}

// prepare runs Prepare and registers Cleanup, failing the test on error.
func prepare(t *testing.T, m *Manager, pod *corev1.Pod, objs podenv.Objects) (map[string]Volume, []string) {
	t.Helper()
	vols, warnings, err := prepareErr(t, m, pod, objs)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return vols, warnings
}

func prepareErr(t *testing.T, m *Manager, pod *corev1.Pod, objs podenv.Objects) (map[string]Volume, []string, error) {
	t.Helper()
	t.Cleanup(func() {
		if err := m.Cleanup(context.Background(), pod); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return m.Prepare(context.Background(), pod, objs, testNode())
}

func testNode() podenv.Node {
	return podenv.Node{Name: "node1", Allocatable: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
	}}
}

// skipIfNoMount skips when err says this process may not mount.
func skipIfNoMount(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, unix.EPERM) {
		t.Skipf("mount not permitted here: %v", err)
	}
}

// mountInfo returns the fstype and super options of the mount at dir, or
// ok=false.
func mountInfo(t *testing.T, dir string) (fstype, opts string, ok bool) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || unescapeMountPath(fields[4]) != dir {
			continue
		}
		for i, fld := range fields {
			if fld == "-" && i+3 < len(fields) {
				fstype, opts, ok = fields[i+1], fields[i+3], true
			}
		}
	}
	return fstype, opts, ok
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want containing %q", err, want)
	}
}
