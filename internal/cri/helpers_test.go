package cri

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/docker/dockertest"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/berth-project/berth/internal/translate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	testPauseImage = "registry.k8s.io/pause:3.10"
	testImage      = "busybox:1.37"
)

// testNow is the clock of the service and of the fake daemon: every
// timestamp a test sees is derived from it.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeNetwork is cri.Network in memory: it records Setup and Teardown and
// fails them on demand.
type fakeNetwork struct {
	mu          sync.Mutex
	ips         []string
	statusErr   error
	setupErr    error
	teardownErr error
	// onSetup, if set, runs inside Setup before the outcome is decided.
	onSetup   func(ctx context.Context)
	setups    []network.Attachment
	teardowns []network.Attachment
}

func (n *fakeNetwork) Status() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.statusErr
}

func (n *fakeNetwork) Setup(ctx context.Context, a network.Attachment) (network.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.setups = append(n.setups, a)
	if n.onSetup != nil {
		n.onSetup(ctx)
	}
	if n.setupErr != nil {
		return network.Result{}, n.setupErr
	}
	if err := ctx.Err(); err != nil {
		return network.Result{}, err
	}
	return network.Result{IPs: slices.Clone(n.ips), NetworkName: "fake"}, nil
}

func (n *fakeNetwork) Teardown(ctx context.Context, a network.Attachment) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.teardowns = append(n.teardowns, a)
	if n.teardownErr != nil {
		return n.teardownErr
	}
	return ctx.Err()
}

func (n *fakeNetwork) Setups() []network.Attachment {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.setups)
}

func (n *fakeNetwork) Teardowns() []network.Attachment {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.teardowns)
}

// env is a Service on a fake daemon, a fake network and a real sandbox
// store in a temporary directory.
type env struct {
	svc    *Service
	docker *dockertest.Fake
	net    *fakeNetwork
	store  *sandbox.Store
	root   string // the store's directory
	pause  dockertest.Image
	image  dockertest.Image
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "sandboxes")
	store, err := sandbox.NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	d := dockertest.New()
	d.SetClock(func() time.Time { return testNow })
	e := &env{
		docker: d,
		net:    &fakeNetwork{ips: []string{"10.88.0.5", "fd00::5"}},
		store:  store,
		root:   root,
		pause:  d.AddImage(dockertest.Image{ID: dockertest.ImageID("pause"), RepoTags: []string{testPauseImage}, Size: 700_000, User: "65535:65535"}),
		image:  d.AddImage(dockertest.Image{ID: dockertest.ImageID("busybox"), RepoTags: []string{testImage}, Size: 4_000_000}),
	}
	e.svc, err = New(Options{
		Docker:    d,
		Network:   e.net,
		Sandboxes: store,
		Host: translate.Host{
			Capabilities:    []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"},
			AllCapabilities: true,
			MinOOMScoreAdj:  -1000,
		},
		PauseImage:     testPauseImage,
		HostResolvConf: resolv,
		Now:            func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func sandboxConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid", Attempt: 0},
		Hostname:     name,
		LogDirectory: "/var/log/pods/default_" + name,
		Labels:       map[string]string{"app": name, "io.kubernetes.pod.name": name},
		Annotations:  map[string]string{"note": "sandbox " + name},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func hostNetwork(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	return cfg
}

func containerConfig(name string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: name, Attempt: 1},
		Image:       &runtimeapi.ImageSpec{Image: testImage},
		Command:     []string{"sleep", "3600"},
		LogPath:     name + "/1.log",
		Labels:      map[string]string{"container": name},
		Annotations: map[string]string{"note": "container " + name},
	}
}

func (e *env) runSandbox(t *testing.T, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	res, err := e.svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox(%s): %v", cfg.GetMetadata().GetName(), err)
	}
	return res.PodSandboxId
}

func (e *env) createContainer(t *testing.T, sandboxID string, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	res, err := e.svc.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{
		PodSandboxId: sandboxID, Config: cfg, SandboxConfig: sbCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer(%s): %v", cfg.GetMetadata().GetName(), err)
	}
	return res.ContainerId
}

func (e *env) startContainer(t *testing.T, id string) {
	t.Helper()
	if _, err := e.svc.StartContainer(context.Background(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
}

// sandboxDirs lists what the store holds.
func (e *env) sandboxDirs(t *testing.T) []string {
	t.Helper()
	ids, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// count is how many times method was called on the fake daemon.
func count(d *dockertest.Fake, method string) int {
	n := 0
	for _, c := range d.Calls() {
		if c == method {
			n++
		}
	}
	return n
}

// field is the CRI field path an error message starts with, as the
// handlers write them ("config.metadata.name: empty: ...").
func field(err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, ": "); i >= 0 {
		return msg[:i]
	}
	return msg
}
