package dockertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

var ctx = context.Background()

func newWithImage(t *testing.T) (*Fake, Image) {
	t.Helper()
	f := New()
	img := f.AddImage(Image{RepoTags: []string{"busybox:latest"}, Labels: map[string]string{"from": "image", "shared": "image"}})
	return f, img
}

func create(t *testing.T, f *Fake, name string, labels map[string]string) string {
	t.Helper()
	res, err := f.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name, Config: &container.Config{Image: "busybox", Labels: labels},
	})
	if err != nil {
		t.Fatalf("ContainerCreate(%q): %v", name, err)
	}
	return res.ID
}

func TestContainerCreate(t *testing.T) {
	f, img := newWithImage(t)
	id := create(t, f, "web", map[string]string{"shared": "container"})
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Errorf("ID = %q, want 64 hex digits", id)
	}
	c, ok := f.Container(id)
	if !ok {
		t.Fatal("created container not found")
	}
	if c.Name != "/web" || c.Image != img.ID || c.State.Status != container.StateCreated {
		t.Errorf("got Name %q Image %q Status %q, want /web %s created", c.Name, c.Image, c.State.Status, img.ID)
	}
	wantLabels := map[string]string{"from": "image", "shared": "container"}
	if diff := cmp.Diff(wantLabels, c.Config.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	_, err := f.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "web", Config: &container.Config{Image: "busybox"}})
	if !errdefs.IsConflict(err) {
		t.Errorf("create with a used name: err = %v, want a conflict", err)
	}
	_, err = f.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "other", Config: &container.Config{Image: "nginx"}})
	if !errdefs.IsNotFound(err) {
		t.Errorf("create from an unknown image: err = %v, want not found", err)
	}
	_, err = f.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "bad name", Config: &container.Config{Image: "busybox"}})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("create with an invalid name: err = %v, want invalid argument", err)
	}
}

func TestContainerInspectLookup(t *testing.T) {
	f, _ := newWithImage(t)
	id := create(t, f, "web", nil)
	for _, ref := range []string{id, id[:12], "web", "/web"} {
		res, err := f.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
		if err != nil || res.Container.ID != id {
			t.Errorf("ContainerInspect(%q) = %q, %v; want %q", ref, res.Container.ID, err, id)
		}
	}
	for _, ref := range []string{"nope", "/nope", strings.Repeat("f", 64)} {
		if _, err := f.ContainerInspect(ctx, ref, client.ContainerInspectOptions{}); !errdefs.IsNotFound(err) {
			t.Errorf("ContainerInspect(%q): err = %v, want not found", ref, err)
		}
	}
	if _, err := f.ContainerInspect(ctx, "", client.ContainerInspectOptions{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ContainerInspect(\"\"): err = %v, want invalid argument", err)
	}
	// The empty prefix of two containers is ambiguous; so is any shared one.
	create(t, f, "db", nil)
	if _, ok := f.Container(""); ok {
		t.Error("Container(\"\") found something")
	}

	// What the caller gets is a copy.
	res, _ := f.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	res.Container.Config.Labels["x"] = "y"
	res.Container.State.Running = true
	if c, _ := f.Container(id); c.Config.Labels["x"] != "" || c.State.Running {
		t.Error("changing an inspect result changed the fake")
	}
}

func TestContainerLifecycle(t *testing.T) {
	f, _ := newWithImage(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 123, time.UTC)
	f.SetClock(func() time.Time { return now })
	id := create(t, f, "web", nil)

	if _, err := f.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.Container(id)
	if !c.State.Running || c.State.Pid == 0 || c.State.StartedAt != "2025-06-01T12:00:00.000000123Z" {
		t.Errorf("after start: %+v", *c.State)
	}
	pid := c.State.Pid
	if _, err := f.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Errorf("starting a running container: %v", err)
	}
	if c, _ := f.Container(id); c.State.Pid != pid {
		t.Errorf("starting a running container changed its pid")
	}
	if _, err := f.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); !errdefs.IsConflict(err) {
		t.Errorf("removing a running container without force: err = %v, want conflict", err)
	}

	now = now.Add(time.Minute)
	if _, err := f.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	c, _ = f.Container(id)
	want := container.State{
		Status: container.StateExited, StartedAt: "2025-06-01T12:00:00.000000123Z", FinishedAt: "2025-06-01T12:01:00.000000123Z",
	}
	if diff := cmp.Diff(want, *c.State); diff != "" {
		t.Errorf("after stop (-want +got):\n%s", diff)
	}
	if _, err := f.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}
	if err := f.Exit(id, 1, false); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Exit of a stopped container: err = %v", err)
	}

	if _, err := f.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Exit(id, 137, true); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.Container(id); c.State.ExitCode != 137 || !c.State.OOMKilled || c.State.Running {
		t.Errorf("after Exit: %+v", *c.State)
	}
	if _, err := f.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("removing a removed container: err = %v, want not found", err)
	}
}

func TestContainerList(t *testing.T) {
	f, _ := newWithImage(t)
	a := create(t, f, "ca", map[string]string{"app": "web", "tier": "front"})
	b := create(t, f, "cb", map[string]string{"app": "web"})
	c := create(t, f, "cc", map[string]string{"app": "db"})
	if _, err := f.ContainerStart(ctx, a, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts client.ContainerListOptions
		want []string
	}{
		{"running only", client.ContainerListOptions{}, []string{a}},
		{"all, newest first", client.ContainerListOptions{All: true}, []string{c, b, a}},
		{"label key=value", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "app=web")}, []string{b, a}},
		{"labels all match", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "app=web", "tier=front")}, []string{a}},
		{"label key only", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "tier")}, []string{a}},
		{"label no match", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "app=cache")}, nil},
		{"label from image", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "from=image")}, []string{c, b, a}},
		{"id prefix", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("id", b[:10])}, []string{b}},
		{"status implies all", client.ContainerListOptions{Filters: client.Filters{}.Add("status", "created")}, []string{c, b}},
		{"name", client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("name", "cc")}, []string{c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := f.ContainerList(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range res.Items {
				got = append(got, it.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
		})
	}
	res, _ := f.ContainerList(ctx, client.ContainerListOptions{})
	if it := res.Items[0]; it.State != container.StateRunning || it.Names[0] != "/ca" || it.Labels["app"] != "web" {
		t.Errorf("summary = %+v", it)
	}
	if _, err := f.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("bogus", "x")}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unknown filter: err = %v, want invalid argument", err)
	}
}

func TestContainerUpdate(t *testing.T) {
	f, _ := newWithImage(t)
	id := create(t, f, "web", nil)
	if _, err := f.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: &container.Resources{Memory: 1 << 20, CPUShares: 512}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: &container.Resources{CPUQuota: 5000}}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.Container(id)
	if r := c.HostConfig.Resources; r.Memory != 1<<20 || r.CPUShares != 512 || r.CPUQuota != 5000 {
		t.Errorf("resources = %+v", r)
	}
}

func TestImages(t *testing.T) {
	f := New()
	bb := f.AddImage(Image{RepoTags: []string{"busybox:latest", "busybox:1.37"}, RepoDigests: []string{"busybox@sha256:" + strings.Repeat("a", 64)}, User: "1000"})
	pause := f.AddImage(Image{ID: ImageID("pause"), RepoTags: []string{"registry.k8s.io/pause:3.10"}})

	for _, ref := range []string{bb.ID, strings.TrimPrefix(bb.ID, "sha256:"), bb.ID[:19], bb.ID[7:19], "busybox", "busybox:latest", "docker.io/library/busybox:1.37", "busybox@sha256:" + strings.Repeat("a", 64)} {
		res, err := f.ImageInspect(ctx, ref)
		if err != nil || res.ID != bb.ID || res.Config.User != "1000" {
			t.Errorf("ImageInspect(%q) = %q, %v", ref, res.ID, err)
		}
	}
	for _, ref := range []string{"nginx", "busybox:1.36", "registry.k8s.io/pause"} {
		if _, err := f.ImageInspect(ctx, ref); !errdefs.IsNotFound(err) {
			t.Errorf("ImageInspect(%q): err = %v, want not found", ref, err)
		}
	}

	list, err := f.ImageList(ctx, client.ImageListOptions{})
	if err != nil || len(list.Items) != 2 || list.Items[0].ID != pause.ID {
		t.Errorf("ImageList = %+v, %v", list.Items, err)
	}

	// A tag moves to the image that takes it.
	bb2 := f.AddImage(Image{ID: ImageID("busybox 2"), RepoTags: []string{"busybox:latest"}})
	if img, _ := f.Image("busybox"); img.ID != bb2.ID {
		t.Errorf("busybox is %s, want the newer %s", img.ID, bb2.ID)
	}
	if img, _ := f.Image(bb.ID); !cmp.Equal(img.RepoTags, []string{"busybox:1.37"}) {
		t.Errorf("old image's tags = %q", img.RepoTags)
	}

	// Removing by one of several tags untags; by the last one removes.
	f.AddImage(Image{ID: bb.ID, RepoTags: []string{"mine:1"}})
	if _, err := f.ImageRemove(ctx, "mine:1", client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Image(bb.ID); !ok {
		t.Error("untag removed the image")
	}
	if _, err := f.ImageRemove(ctx, "busybox:1.37", client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Image(bb.ID); ok {
		t.Error("image still there after its last tag was removed")
	}
	if _, err := f.ImageRemove(ctx, bb.ID, client.ImageRemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("removing a removed image: err = %v, want not found", err)
	}

	// An image a container uses stays, but for a stopped one with Force.
	id := create(t, f, "web", nil)
	if _, err := f.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ImageRemove(ctx, bb2.ID, client.ImageRemoveOptions{Force: true}); !errdefs.IsConflict(err) {
		t.Errorf("removing an image a running container uses: err = %v, want conflict", err)
	}
	if _, err := f.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ImageRemove(ctx, bb2.ID, client.ImageRemoveOptions{}); !errdefs.IsConflict(err) {
		t.Errorf("removing an image a stopped container uses, without force: err = %v, want conflict", err)
	}
	if _, err := f.ImageRemove(ctx, bb2.ID, client.ImageRemoveOptions{Force: true}); err != nil {
		t.Errorf("force-removing an image a stopped container uses: %v", err)
	}
}

func TestImagePull(t *testing.T) {
	f := New()
	f.SetPull("nginx:1.27", Image{ID: ImageID("nginx"), RepoTags: []string{"nginx:1.27"}})
	f.SetPullError("private/app", errdefs.ErrUnauthenticated.WithMessage("denied"))

	resp, err := f.ImagePull(ctx, "nginx:1.27", client.ImagePullOptions{RegistryAuth: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if f.OpenPulls() != 1 {
		t.Errorf("OpenPulls = %d before Close, want 1", f.OpenPulls())
	}
	b, _ := io.ReadAll(resp)
	if !strings.Contains(string(b), "Downloaded newer image") {
		t.Errorf("stream = %s", b)
	}
	if err := resp.Wait(ctx); err != nil {
		t.Errorf("Wait: %v", err)
	}
	resp.Close()
	resp.Close()
	if f.OpenPulls() != 0 {
		t.Errorf("OpenPulls = %d after Close, want 0", f.OpenPulls())
	}
	if img, ok := f.Image("nginx:1.27"); !ok || img.ID != ImageID("nginx") {
		t.Errorf("pulled image = %+v, %t", img, ok)
	}

	resp, err = f.ImagePull(ctx, "private/app", client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Wait(ctx); !errdefs.IsUnauthorized(err) {
		t.Errorf("Wait of a failing pull: err = %v, want unauthorized", err)
	}
	resp.Close()
	if _, err := f.ImagePull(ctx, "nope", client.ImagePullOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("pull of an unknown repository: err = %v, want not found", err)
	}
	want := []Pull{{"nginx:1.27", "abc"}, {"private/app", ""}, {"nope", ""}}
	if diff := cmp.Diff(want, f.Pulls()); diff != "" {
		t.Errorf("Pulls (-want +got):\n%s", diff)
	}

	// A pull held in the hook fails if its context goes meanwhile.
	cctx, cancel := context.WithCancel(ctx)
	f.SetPullHook(func(string) { cancel() })
	if _, err := f.ImagePull(cctx, "nginx:1.27", client.ImagePullOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("pull cancelled in flight: err = %v", err)
	}
}

func TestInjectErrorAndCalls(t *testing.T) {
	f, _ := newWithImage(t)
	boom := errors.New("boom")
	f.InjectError("ContainerCreate", boom)
	f.InjectError("ContainerCreate", boom)
	for range 2 {
		if _, err := f.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "web", Config: &container.Config{Image: "busybox"}}); err != boom {
			t.Errorf("err = %v, want the injected one", err)
		}
	}
	if len(f.Containers()) != 0 {
		t.Error("a failed create made a container")
	}
	create(t, f, "web", nil)
	if _, err := f.Ping(ctx, client.PingOptions{}); err != nil {
		t.Error(err)
	}
	want := []string{"ContainerCreate", "ContainerCreate", "ContainerCreate", "Ping"}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.Info(cctx, client.InfoOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a cancelled context: err = %v", err)
	}

	defer func() {
		if recover() == nil {
			t.Error("InjectError of an unknown method did not panic")
		}
	}()
	f.InjectError("ContainerCreat", boom)
}

func TestConcurrentUse(t *testing.T) {
	f, _ := newWithImage(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := create(t, f, fmt.Sprintf("c%d", i), nil)
			_, _ = f.ContainerStart(ctx, id, client.ContainerStartOptions{})
			_, _ = f.ContainerList(ctx, client.ContainerListOptions{All: true})
			_, _ = f.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			_, _ = f.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
		})
	}
	wg.Wait()
	if n := len(f.Containers()); n != 0 {
		t.Errorf("%d containers left", n)
	}
}
