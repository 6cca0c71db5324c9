package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

func cmVolumePod(uid string) *corev1.Pod {
	return newPod(uid, corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
}

func TestAtomicRewrite(t *testing.T) {
	m := newTestManager(t)
	// Old versions go as soon as they are two changes back.
	m.versionGrace = 0
	pod := cmVolumePod("uid-a")
	objs := objects()
	vols, _ := prepare(t, m, pod, objs)
	dir := vols["v"].HostPath
	v1, _ := os.Readlink(filepath.Join(dir, dataDir))

	// Same content: nothing is rewritten.
	prepare(t, m, pod, objs)
	if got, _ := os.Readlink(filepath.Join(dir, dataDir)); got != v1 {
		t.Fatalf("unchanged content rewritten: %s -> %s", v1, got)
	}

	// Change one key, drop one, add one; look at the volume just before
	// the swap: readers must still see the whole old set.
	objs.ConfigMaps["cfg"].Data = map[string]string{"app.conf": "port=8080", "new": "n"}
	objs.ConfigMaps["cfg"].BinaryData = nil
	var sawBefore map[string]string
	var versionsBefore int
	m.beforeSwap = func(d string) {
		sawBefore = tree(t, d)
		versionsBefore = countVersions(t, d)
	}
	prepare(t, m, pod, objs)
	m.beforeSwap = nil
	wantOld := map[string]string{"app.conf": "-rw-r--r-- port=80", "level": "-rw-r--r-- debug", "logo.bin": "-rw-r--r-- \x00\x01\x02"}
	if diff := cmp.Diff(wantOld, sawBefore); diff != "" {
		t.Errorf("before swap (-want +got):\n%s", diff)
	}
	if versionsBefore != 2 {
		t.Errorf("version directories before swap = %d, want old and new", versionsBefore)
	}
	wantNew := map[string]string{"app.conf": "-rw-r--r-- port=8080", "new": "-rw-r--r-- n"}
	if diff := cmp.Diff(wantNew, tree(t, dir)); diff != "" {
		t.Errorf("after swap (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..2") {
			names = append(names, e.Name())
		}
	}
	if diff := cmp.Diff([]string{"..data", "app.conf", "new"}, names); diff != "" {
		t.Errorf("entries (-want +got), stale links or versions left:\n%s", diff)
	}
	// The replaced version stays for readers mid-open until the next change.
	if _, err := os.Stat(filepath.Join(dir, v1)); err != nil {
		t.Errorf("previous version %s: %v, want kept", v1, err)
	}
	objs.ConfigMaps["cfg"].Data["new"] = "n2"
	prepare(t, m, pod, objs)
	if _, err := os.Stat(filepath.Join(dir, v1)); !os.IsNotExist(err) {
		t.Errorf("version %s two changes old: %v, want removed", v1, err)
	}
	if n := countVersions(t, dir); n != 2 {
		t.Errorf("version directories = %d, want current and previous", n)
	}
}

func countVersions(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") {
			n++
		}
	}
	return n
}

// A reader polling a file while the volume is rewritten over and over
// always sees one complete version, never a missing or empty file.
func TestAtomicRewriteConcurrentReader(t *testing.T) {
	m := newTestManager(t)
	pod := cmVolumePod("uid-r")
	objs := objects()
	objs.ConfigMaps["cfg"].Data["app.conf"] = "port=0;end"
	vols, _ := prepare(t, m, pod, objs)
	path := filepath.Join(vols["v"].HostPath, "app.conf")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil || !strings.HasPrefix(string(b), "port=") || !strings.HasSuffix(string(b), ";end") {
				bad = append(bad, fmt.Sprintf("%q %v", b, err))
				return
			}
		}
	}()
	for i := range 200 {
		objs.ConfigMaps["cfg"].Data["app.conf"] = fmt.Sprintf("port=%d;%s;end", i, strings.Repeat("x", i*10))
		if _, _, err := m.Prepare(context.Background(), pod, objs, podenv.Node{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("reader saw a torn update: %s", bad[0])
	}
}
