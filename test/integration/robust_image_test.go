package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// registries are the two local registries of hack/registry.sh.
type registries struct {
	auth, noauth string // host:port
}

// startRegistries starts hack/registry.sh's registries for this test and
// stops them (removing their data) at cleanup.
func startRegistries(t *testing.T) registries {
	t.Helper()
	dir := filepath.Join(shortTempDir(t), "registry")
	script, err := filepath.Abs("../../hack/registry.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("registry.sh stop: %v\n%s", err, out)
		}
	})
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script, "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("registry.sh start: %v\n%s", err, stderr.String())
	}
	var r registries
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "REGISTRY_AUTH":
			r.auth = v
		case "REGISTRY_NOAUTH":
			r.noauth = v
		}
	}
	if r.auth == "" || r.noauth == "" {
		t.Fatalf("registry.sh start printed %q", out)
	}
	return r
}

// dockerAuth is an X-Registry-Auth value.
func dockerAuth(t *testing.T, user, password, server string) string {
	t.Helper()
	b, err := json.Marshal(registry.AuthConfig{Username: user, Password: password, ServerAddress: server})
	if err != nil {
		t.Fatal(err)
	}
	return base64.URLEncoding.EncodeToString(b)
}

// pushTestImage makes an image of this test's own from busybox (one more
// LABEL, so its id is not busybox's: removing it through the CRI must not
// remove the suite's image), pushes it as each of refs, then removes it
// from Docker. It returns the image id.
func pushTestImage(t *testing.T, refs map[string]string) string {
	t.Helper()
	ctx := context.Background()
	dc := theSuite.docker
	c, err := dc.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{
		Image: busybox, Cmd: []string{"true"}, Labels: map[string]string{testLabel: "true"},
	}})
	if err != nil {
		t.Fatalf("create container to commit: %v", err)
	}
	defer dc.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	commit, err := dc.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{
		Changes: []string{fmt.Sprintf("LABEL io.berth.test.robust=%d", time.Now().UnixNano())},
	})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	id := commit.ID
	t.Cleanup(func() { dc.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true}) })
	for ref, auth := range refs {
		if _, err := dc.ImageTag(ctx, client.ImageTagOptions{Source: id, Target: ref}); err != nil {
			t.Fatalf("tag %s: %v", ref, err)
		}
		resp, err := dc.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
		if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		err = resp.Wait(ctx)
		resp.Close()
		if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	if _, err := dc.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatalf("remove the pushed image locally: %v", err)
	}
	if _, err := dc.ImageInspect(ctx, id); err == nil {
		t.Fatalf("image %s still in Docker after removal", id)
	}
	return id
}

// TestRobustImagePull pulls through berth's ImageService from local
// registries, with and without credentials, and checks the image ids
// berth reports agree everywhere.
func TestRobustImagePull(t *testing.T) {
	e := newEnv(t)
	reg := startRegistries(t)
	tag := fmt.Sprintf("t%d", time.Now().UnixNano())
	noauthRef := reg.noauth + "/berth-robust/busybox:" + tag
	authRef := reg.auth + "/berth-robust/busybox:" + tag
	id := pushTestImage(t, map[string]string{noauthRef: dockerAuth(t, "", "", ""), authRef: dockerAuth(t, "berth", "berth", reg.auth)})
	t.Cleanup(func() {
		for _, ref := range []string{noauthRef, authRef} {
			theSuite.docker.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	})
	ctx := e.ctx()
	pull := func(ref string, auth *runtimeapi.AuthConfig) (string, error) {
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		r, err := e.img.PullImage(pctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth})
		return r.GetImageRef(), err
	}
	imageStatus := func(ref string) *runtimeapi.Image {
		t.Helper()
		st, err := e.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("ImageStatus %s: %v", ref, err)
		}
		return st.Image
	}
	removeImage := func(ref string) {
		t.Helper()
		for i := range 2 {
			if _, err := e.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
				t.Errorf("RemoveImage %s #%d: %v", ref, i+1, err)
			}
		}
		if img := imageStatus(ref); img != nil {
			t.Errorf("ImageStatus %s after RemoveImage = %s, want empty", ref, mustJSON(img))
		}
	}

	t.Run("no auth", func(t *testing.T) {
		ref, err := pull(noauthRef, nil)
		if err != nil {
			t.Fatalf("PullImage: %v", err)
		}
		if ref != id {
			t.Errorf("image_ref %q, want the pushed image's id %q", ref, id)
		}
		list, err := e.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var listed *runtimeapi.Image
		for _, img := range list.Images {
			for _, tg := range img.RepoTags {
				if tg == noauthRef {
					listed = img
				}
			}
		}
		if listed == nil || listed.Id != ref {
			t.Errorf("ListImages entry for %s = %s, want id %s", noauthRef, mustJSON(listed), ref)
		}
		if st := imageStatus(noauthRef); st == nil || st.Id != ref {
			t.Errorf("ImageStatus %s = %s, want id %s", noauthRef, mustJSON(st), ref)
		}
		if st := imageStatus(ref); st == nil || st.Id != ref {
			t.Errorf("ImageStatus by id %s = %s", ref, mustJSON(st))
		}

		pod := e.podConfig("pulled")
		podID := e.runPod(pod)
		cfg := containerConfig("pulled", "sleep 3600")
		cfg.Image.Image = noauthRef
		cid := e.runContainer(podID, pod, cfg)
		cs, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
		if err != nil {
			t.Fatal(err)
		}
		if cs.Status.ImageRef != ref || cs.Status.Image.GetImage() != noauthRef {
			t.Errorf("ContainerStatus image %q image_ref %q, want %q and %q", cs.Status.Image.GetImage(), cs.Status.ImageRef, noauthRef, ref)
		}
		ctrs, err := e.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: cid}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ctrs.Containers) != 1 || ctrs.Containers[0].ImageRef != ref {
			t.Errorf("ListContainers = %s, want image_ref %s", mustJSON(ctrs.Containers), ref)
		}
		if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
		removeImage(noauthRef)
		if st := imageStatus(ref); st != nil {
			t.Errorf("ImageStatus by id after removal = %s", mustJSON(st))
		}
		if st := imageStatus(busybox); st == nil {
			t.Errorf("%s gone after removing the pulled image", busybox)
		}
	})

	t.Run("nonexistent tag", func(t *testing.T) {
		start := time.Now()
		_, err := pull(reg.noauth+"/berth-robust/busybox:no-such-tag", nil)
		if err == nil {
			t.Fatal("pull of a nonexistent tag succeeded")
		}
		msg := strings.ToLower(status.Convert(err).Message())
		if status.Code(err) != codes.NotFound && !strings.Contains(msg, "not found") && !strings.Contains(msg, "manifest unknown") {
			t.Errorf("pull of a nonexistent tag: %v; want NotFound or a message saying so", err)
		}
		t.Logf("nonexistent tag after %v: %v", time.Since(start), err)
	})

	t.Run("auth registry", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			auth *runtimeapi.AuthConfig
		}{
			{"without credentials", nil},
			{"wrong password", &runtimeapi.AuthConfig{Username: "berth", Password: "wrong"}},
			{"wrong auth field", &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("berth:wrong"))}},
		} {
			start := time.Now()
			_, err := pull(authRef, tc.auth)
			if err == nil {
				t.Errorf("pull %s: succeeded", tc.name)
				continue
			}
			msg := strings.ToLower(status.Convert(err).Message())
			if status.Code(err) == codes.DeadlineExceeded ||
				!(strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required") ||
					strings.Contains(msg, "no basic auth credentials")) {
				t.Errorf("pull %s: %v; want a clear authentication error", tc.name, err)
			}
			t.Logf("pull %s: %v after %v (%v)", tc.name, status.Code(err), time.Since(start).Round(time.Millisecond), err)
			if img := imageStatus(authRef); img != nil {
				t.Errorf("pull %s failed but the image is there: %s", tc.name, mustJSON(img))
			}
		}

		ref, err := pull(authRef, &runtimeapi.AuthConfig{Username: "berth", Password: "berth"})
		if err != nil {
			t.Fatalf("PullImage with username/password: %v", err)
		}
		if st := imageStatus(authRef); ref != id || st == nil || st.Id != ref {
			t.Errorf("with username/password: image_ref %q, ImageStatus %s, want %s", ref, mustJSON(st), id)
		}
		removeImage(authRef)

		ref, err = pull(authRef, &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("berth:berth"))})
		if err != nil {
			t.Fatalf("PullImage with auth: %v", err)
		}
		if st := imageStatus(authRef); ref != id || st == nil || st.Id != ref {
			t.Errorf("with auth: image_ref %q, ImageStatus %s, want %s", ref, mustJSON(st), id)
		}

		// Two concurrent removes of one image both succeed.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("concurrent RemoveImage #%d: %v", i+1, err)
			}
		}
		if img := imageStatus(authRef); img != nil {
			t.Errorf("ImageStatus after concurrent removes = %s", mustJSON(img))
		}
	})
}
