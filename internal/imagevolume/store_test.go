package imagevolume

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/docker/dockertest"
	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// exporter is the fake daemon plus ContainerExport, which dockertest
// lacks: it exports the archive set for the container's image.
type exporter struct {
	*dockertest.Fake
	mu       sync.Mutex
	archives map[string][]byte // by image ID
	exports  int
	// gate, if set, holds each export until it is closed.
	gate chan struct{}
	// helperLabels are the labels of the containers exported.
	helperLabels []map[string]string
	err          error
}

func (x *exporter) ContainerExport(ctx context.Context, id string, _ client.ContainerExportOptions) (client.ContainerExportResult, error) {
	c, ok := x.Container(id)
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("no such container: " + id)
	}
	x.mu.Lock()
	x.exports++
	x.helperLabels = append(x.helperLabels, c.Config.Labels)
	gate, archive, err := x.gate, x.archives[c.Image], x.err
	x.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(archive)), nil
}

func (x *exporter) Exports() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.exports
}

type storeEnv struct {
	store *Store
	fake  *exporter
	dir   string
	image string // an image ID with a good archive
}

func newStoreEnv(t *testing.T) *storeEnv {
	t.Helper()
	d := dockertest.New()
	img := d.AddImage(dockertest.Image{ID: dockertest.ImageID("busybox"), RepoTags: []string{"busybox:1"}})
	x := &exporter{Fake: d, archives: map[string][]byte{
		img.ID: tarOf(t, dirEnt("bin/", 0o755), fileEnt("bin/busybox", "bb", 0o755), dirEnt("etc/", 0o755), fileEnt("etc/passwd", "root", 0o644)),
	}}
	dir := filepath.Join(t.TempDir(), "image-volumes")
	s, err := New(Options{Docker: x, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return &storeEnv{store: s, fake: x, dir: dir, image: img.ID}
}

// dirNames lists dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestAcquire(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	rootfs, release, err := e.store.Acquire(ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	b, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	if err != nil || string(b) != "root" {
		t.Errorf("etc/passwd in the tree: %q, %v", b, err)
	}
	if want := filepath.Join(e.dir, e.image[len("sha256:"):], "rootfs"); rootfs != want {
		t.Errorf("rootfs = %q, want %q", rootfs, want)
	}
	if n := len(e.fake.Containers()); n != 0 {
		t.Errorf("%d containers left after the extraction, want the helper removed", n)
	}
	if diff := cmp.Diff([]map[string]string{naming.ImageVolumeHelperLabels(e.image)}, e.fake.helperLabels); diff != "" {
		t.Errorf("helper container labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{e.image[len("sha256:"):]}, dirNames(t, e.dir)); diff != "" {
		t.Errorf("store directory (-want +got):\n%s", diff)
	}
	// Again: the tree is there, nothing is exported.
	_, release2, err := e.store.Acquire(ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	release2()
	if n := e.fake.Exports(); n != 1 {
		t.Errorf("exports = %d, want 1", n)
	}
	ids, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{e.image}, ids); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func TestAcquireConcurrent(t *testing.T) {
	e := newStoreEnv(t)
	e.fake.gate = make(chan struct{})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, release, err := e.store.Acquire(context.Background(), e.image)
			errs[i] = err
			if err == nil {
				release()
			}
		})
	}
	// Let every caller reach the extraction in progress before it ends.
	time.Sleep(50 * time.Millisecond)
	close(e.fake.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if got := e.fake.Exports(); got != 1 {
		t.Errorf("exports = %d, want 1 for %d concurrent callers", got, n)
	}
}

// TestAcquireCallerGone: the extraction outlives a caller that gives up,
// so the kubelet's retry finds the tree made.
func TestAcquireCallerGone(t *testing.T) {
	e := newStoreEnv(t)
	e.fake.gate = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := e.store.Acquire(ctx, e.image); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire past its deadline = %v, want DeadlineExceeded", err)
	}
	close(e.fake.gate)
	rootfs, release, err := e.store.Acquire(context.Background(), e.image)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		t.Error(err)
	}
	if got := e.fake.Exports(); got != 1 {
		t.Errorf("exports = %d, want 1", got)
	}
}

func TestAcquireFails(t *testing.T) {
	tests := []struct {
		name    string
		image   func(e *storeEnv) string
		setup   func(t *testing.T, e *storeEnv)
		errKind func(error) bool
	}{
		{"not an image ID", func(*storeEnv) string { return "busybox:1" }, nil, errdefs.IsInvalidArgument},
		{"image not present", func(*storeEnv) string { return dockertest.ImageID("gone") }, nil, errdefs.IsNotFound},
		{"export fails", nil, func(_ *testing.T, e *storeEnv) { e.fake.err = errdefs.ErrUnavailable.WithMessage("daemon gone") }, errdefs.IsUnavailable},
		{"create fails", nil, func(_ *testing.T, e *storeEnv) {
			e.fake.InjectError("ContainerCreate", errdefs.ErrUnavailable.WithMessage("daemon gone"))
		}, errdefs.IsUnavailable},
		{"malicious archive", nil, func(t *testing.T, e *storeEnv) {
			e.fake.archives[e.image] = tarOf(t, symlinkEnt("link", "/"), fileEnt("link/evil", "x", 0o644))
		}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newStoreEnv(t)
			img := e.image
			if tt.image != nil {
				img = tt.image(e)
			}
			if tt.setup != nil {
				tt.setup(t, e)
			}
			_, _, err := e.store.Acquire(context.Background(), img)
			if err == nil || !tt.errKind(err) {
				t.Fatalf("Acquire = %v, want an error of the right kind", err)
			}
			if names := dirNames(t, e.dir); len(names) != 0 {
				t.Errorf("store directory after a failure holds %v, want nothing", names)
			}
			if n := len(e.fake.Containers()); n != 0 {
				t.Errorf("%d helper containers left", n)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	_, release, err := e.store.Acquire(ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	inUse := func(used bool) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { asked++; return used, nil }
	}

	// Pinned by a create at work: kept, and no container list needed.
	if removed, err := e.store.Remove(ctx, e.image, inUse(false)); err != nil || removed {
		t.Errorf("Remove of a pinned tree = %t, %v; want kept", removed, err)
	}
	if asked != 0 {
		t.Errorf("inUse asked %d times for a pinned tree", asked)
	}
	release()
	release() // a second release is a no-op
	if removed, err := e.store.Remove(ctx, e.image, inUse(true)); err != nil || removed {
		t.Errorf("Remove of a tree in use = %t, %v; want kept", removed, err)
	}
	if _, err := e.store.Remove(ctx, e.image, func(context.Context) (bool, error) { return false, errors.New("list failed") }); err == nil {
		t.Error("Remove with a failing inUse succeeded")
	}
	if removed, err := e.store.Remove(ctx, e.image, inUse(false)); err != nil || !removed {
		t.Errorf("Remove of an unused tree = %t, %v; want removed", removed, err)
	}
	if names := dirNames(t, e.dir); len(names) != 0 {
		t.Errorf("store directory after Remove holds %v", names)
	}
	if removed, err := e.store.Remove(ctx, e.image, inUse(false)); err != nil || removed {
		t.Errorf("Remove of no tree = %t, %v; want nothing removed", removed, err)
	}
	// Made again on the next use.
	if _, release, err = e.store.Acquire(ctx, e.image); err != nil {
		t.Fatal(err)
	}
	release()
	if n := e.fake.Exports(); n != 2 {
		t.Errorf("exports = %d, want 2", n)
	}
}

func TestReconcile(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	_, release, err := e.store.Acquire(ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	release()
	// What a crash leaves: a helper container, a tree half made and one
	// half removed. Other containers are not the store's.
	for name, labels := range map[string]map[string]string{
		"leftover":             naming.ImageVolumeHelperLabels(e.image),
		"berth-image-volume-x": {naming.LabelManaged: "true", naming.LabelType: naming.TypeContainer},
	} {
		if _, err := e.fake.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: name, Config: &container.Config{Image: e.image, Labels: labels},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{".tmp-0123-x/rootfs/bin", ".trash-0123-y/rootfs"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range e.fake.Containers() {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"/berth-image-volume-x"}, names); diff != "" {
		t.Errorf("containers after Reconcile (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{e.image[len("sha256:"):]}, dirNames(t, e.dir)); diff != "" {
		t.Errorf("store directory after Reconcile (-want +got):\n%s", diff)
	}
	if !slices.Contains(e.fake.Calls(), "ContainerList") {
		t.Error("Reconcile did not list containers")
	}
}

// CopyFromContainer serves one path of the container's image archive, as
// the engine's archive endpoint does.
func (x *exporter) CopyFromContainer(_ context.Context, id string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	c, ok := x.Container(id)
	if !ok {
		return client.CopyFromContainerResult{}, errdefs.ErrNotFound.WithMessage("no such container: " + id)
	}
	x.mu.Lock()
	archive := x.archives[c.Image]
	x.mu.Unlock()
	tr := tar.NewReader(bytes.NewReader(archive))
	want := strings.TrimPrefix(o.SourcePath, "/")
	for {
		hdr, err := tr.Next()
		if err != nil {
			return client.CopyFromContainerResult{}, errdefs.ErrNotFound.WithMessage("no such path: " + o.SourcePath)
		}
		if strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/") != want {
			continue
		}
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		h := *hdr
		h.Name = path.Base(want)
		tw.WriteHeader(&h)
		io.Copy(tw, tr)
		tw.Close()
		return client.CopyFromContainerResult{Content: io.NopCloser(&out)}, nil
	}
}

func TestReadFile(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	b, err := e.store.ReadFile(ctx, e.image, "/etc/passwd", 1024)
	if err != nil || string(b) != "root" {
		t.Fatalf("ReadFile /etc/passwd = %q, %v", b, err)
	}
	if _, err := e.store.ReadFile(ctx, e.image, "/etc/passwd", 2); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ReadFile over the limit = %v, want ErrUnsupported", err)
	}
	if _, err := e.store.ReadFile(ctx, e.image, "/etc/group", 1024); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of an absent file = %v, want fs.ErrNotExist", err)
	}
	if _, err := e.store.ReadFile(ctx, e.image, "/bin", 1024); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a directory = %v, want fs.ErrNotExist", err)
	}
	// Every helper container is gone again; nothing was extracted.
	if res, err := e.fake.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil || len(res.Items) != 0 {
		t.Errorf("containers after ReadFile: %d, %v", len(res.Items), err)
	}
	if e.fake.Exports() != 0 {
		t.Errorf("%d exports for ReadFile", e.fake.Exports())
	}
}
