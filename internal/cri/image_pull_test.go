package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/docker/dockertest"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/registry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPullImage(t *testing.T) {
	e := newEnv(t)
	want := e.docker.AddImage(dockertest.Image{ID: dockertest.ImageID("nginx"), RepoTags: []string{"other:tag"}})
	e.docker.SetPull("nginx:1.27", dockertest.Image{ID: want.ID, RepoTags: []string{"nginx:1.27"}})

	res, err := e.svc.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "nginx:1.27"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageRef != want.ID {
		t.Errorf("image ref = %q, want %q", res.ImageRef, want.ID)
	}
	if n := e.docker.OpenPulls(); n != 0 {
		t.Errorf("%d pull responses left open", n)
	}
	st, err := e.svc.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "nginx:1.27"}})
	if err != nil || st.Image.GetId() != want.ID {
		t.Errorf("ImageStatus after pull = %v, %v", st, err)
	}
	if pulls := e.docker.Pulls(); len(pulls) != 1 || pulls[0].RegistryAuth != "" {
		t.Errorf("pulls = %+v, want one without credentials", pulls)
	}
}

func TestPullImageErrors(t *testing.T) {
	tests := []struct {
		name       string
		ref        string
		arrange    func(*dockertest.Fake)
		wantErr    func(error) bool
		wantPrefix string
	}{
		{
			name:    "unknown repository",
			ref:     "nosuch/app:1",
			wantErr: errdefs.IsNotFound,
		},
		{
			name: "registry unreachable",
			ref:  "registry.example:5000/app:1",
			arrange: func(d *dockertest.Fake) {
				d.InjectError("ImagePull", errors.New(`Get "https://registry.example:5000/v2/": dial tcp 192.0.2.1:5000: connect: connection refused`))
			},
			wantErr:    func(err error) bool { return err != nil },
			wantPrefix: "RegistryUnavailable: ",
		},
		{
			name: "registry refuses mid-pull",
			ref:  "private/app:1",
			arrange: func(d *dockertest.Fake) {
				d.SetPullError("private/app:1", errdefs.ErrUnauthenticated.WithMessage("pull access denied"))
			},
			wantErr: errdefs.IsUnauthorized,
		},
		{
			name:       "empty image",
			ref:        "",
			wantErr:    errdefs.IsInvalidArgument,
			wantPrefix: "image.image: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.arrange != nil {
				tt.arrange(e.docker)
			}
			_, err := e.svc.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tt.ref}})
			if !tt.wantErr(err) {
				t.Fatalf("err = %v, want another kind", err)
			}
			if !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Errorf("error %q does not start with %q", err, tt.wantPrefix)
			}
			if n := e.docker.OpenPulls(); n != 0 {
				t.Errorf("%d pull responses left open", n)
			}
		})
	}
}

func TestPullImageAuth(t *testing.T) {
	e := newEnv(t)
	e.docker.SetPull("private/app:1", dockertest.Image{RepoTags: []string{"private/app:1"}})
	auth := base64.StdEncoding.EncodeToString([]byte("robot:s3cr:et"))
	_, err := e.svc.PullImage(context.Background(), &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: "private/app:1"},
		Auth:  &runtimeapi.AuthConfig{Auth: auth, ServerAddress: "registry.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pulls := e.docker.Pulls()
	if len(pulls) != 1 {
		t.Fatalf("%d pulls, want 1", len(pulls))
	}
	got := decodeAuth(t, pulls[0].RegistryAuth)
	want := registry.AuthConfig{Username: "robot", Password: "s3cr:et", ServerAddress: "registry.example"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("X-Registry-Auth (-want +got):\n%s", diff)
	}
}

func decodeAuth(t *testing.T, header string) registry.AuthConfig {
	t.Helper()
	b, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("X-Registry-Auth %q is not base64url: %v", header, err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		t.Fatalf("X-Registry-Auth %s: %v", b, err)
	}
	return ac
}

func TestEncodeAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name    string
		in      *runtimeapi.AuthConfig
		want    registry.AuthConfig
		errPath string // set when an invalid argument is expected
	}{
		{name: "auth split", in: &runtimeapi.AuthConfig{Auth: b64("user:pass")}, want: registry.AuthConfig{Username: "user", Password: "pass"}},
		{name: "colon in password", in: &runtimeapi.AuthConfig{Auth: b64("user:pa:ss")}, want: registry.AuthConfig{Username: "user", Password: "pa:ss"}},
		{name: "empty password", in: &runtimeapi.AuthConfig{Auth: b64("user:")}, want: registry.AuthConfig{Username: "user"}},
		{name: "username wins over auth", in: &runtimeapi.AuthConfig{Username: "u", Password: "p", Auth: b64("other:x")}, want: registry.AuthConfig{Username: "u", Password: "p"}},
		{name: "tokens kept", in: &runtimeapi.AuthConfig{ServerAddress: "r.example", IdentityToken: "id", RegistryToken: "reg"}, want: registry.AuthConfig{ServerAddress: "r.example", IdentityToken: "id", RegistryToken: "reg"}},
		{name: "not base64", in: &runtimeapi.AuthConfig{Auth: "%%%"}, errPath: "auth.auth"},
		{name: "no colon", in: &runtimeapi.AuthConfig{Auth: b64("userpass")}, errPath: "auth.auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeAuth(tt.in)
			if tt.errPath != "" {
				if !errdefs.IsInvalidArgument(err) || field(err) != tt.errPath {
					t.Fatalf("err = %v, want invalid argument naming %s", err, tt.errPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, decodeAuth(t, got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got, err := encodeAuth(nil); got != "" || err != nil {
		t.Errorf("encodeAuth(nil) = %q, %v; want \"\"", got, err)
	}
}

// holdPulls makes the fake's pulls block until release is closed; each
// pull that starts sends on the returned channel.
func holdPulls(d *dockertest.Fake) (started <-chan string, release chan struct{}) {
	s := make(chan string, 100)
	release = make(chan struct{})
	d.SetPullHook(func(ref string) {
		s <- ref
		<-release
	})
	return s, release
}

// settle gives goroutines that were started time to reach the pull in
// flight and wait on it; nothing observable marks that moment.
const settle = 100 * time.Millisecond

func TestPullImageConcurrent(t *testing.T) {
	e := newEnv(t)
	const ref = "nginx:1.27"
	img := e.docker.AddImage(dockertest.Image{ID: dockertest.ImageID("nginx")})
	e.docker.SetPull(ref, dockertest.Image{ID: img.ID, RepoTags: []string{ref}})
	started, release := holdPulls(e.docker)

	const n = 8
	refs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := e.svc.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			refs[i], errs[i] = res.GetImageRef(), err
		})
	}
	<-started
	time.Sleep(settle)
	if got := count(e.docker, "ImagePull"); got != 1 {
		t.Errorf("%d Docker pulls in flight for %d concurrent PullImage calls, want 1", got, n)
	}
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || refs[i] != img.ID {
			t.Errorf("caller %d: %q, %v; want %s", i, refs[i], errs[i], img.ID)
		}
	}
}

// TestPullImageSharedPullOutlivesFirstCaller: two kubelet calls share one
// Docker pull; the first is cancelled (its pod was deleted) while the pull
// runs. The second caller's context is live, so its pull must not fail.
func TestPullImageSharedPullOutlivesFirstCaller(t *testing.T) {
	e := newEnv(t)
	const ref = "nginx:1.27"
	img := e.docker.AddImage(dockertest.Image{ID: dockertest.ImageID("nginx")})
	e.docker.SetPull(ref, dockertest.Image{ID: img.ID, RepoTags: []string{ref}})
	started, release := holdPulls(e.docker)
	req := &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}

	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = e.svc.PullImage(first, req) })
	<-started
	var secondRef string
	var secondErr error
	wg.Go(func() {
		res, err := e.svc.PullImage(context.Background(), req)
		secondRef, secondErr = res.GetImageRef(), err
	})
	time.Sleep(settle)
	cancelFirst()
	close(release)
	wg.Wait()
	if secondErr != nil || secondRef != img.ID {
		t.Errorf("second caller: %q, %v; want %s: another caller's cancellation failed its pull", secondRef, secondErr, img.ID)
	}
}
