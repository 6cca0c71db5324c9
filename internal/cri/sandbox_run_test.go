package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/client"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRunPodSandbox(t *testing.T) {
	e := newEnv(t)
	cfg := sandboxConfig("web")
	id := e.runSandbox(t, cfg)

	c, ok := e.docker.Container(id)
	if !ok {
		t.Fatalf("no pause container %s", id)
	}
	if c.Name != "/k8s_POD_web_default_web-uid_0" {
		t.Errorf("pause container name = %q", c.Name)
	}
	if c.Config.Image != testPauseImage || !c.State.Running {
		t.Errorf("pause container image %q running %t, want %s running", c.Config.Image, c.State.Running, testPauseImage)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", c.State.Pid)
	wantAttachment := network.Attachment{
		ID: id, NetNS: netns, IfName: "eth0", PodName: "web", PodNamespace: "default", PodUID: "web-uid",
	}
	if diff := cmp.Diff([]network.Attachment{wantAttachment}, e.net.Setups()); diff != "" {
		t.Errorf("network Setup calls (-want +got):\n%s", diff)
	}
	if n := len(e.net.Teardowns()); n != 0 {
		t.Errorf("%d Teardown calls, want none", n)
	}

	cp, err := e.store.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	wantCP := sandbox.Checkpoint{
		ID: id, Name: "web", Namespace: "default", UID: "web-uid",
		NetworkReady: true, IPs: []string{"10.88.0.5", "fd00::5"}, NetNS: netns,
	}
	if diff := cmp.Diff(wantCP, cp); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
	hosts, err := os.ReadFile(filepath.Join(e.root, id, sandbox.Hosts))
	if err != nil || !strings.Contains(string(hosts), "10.88.0.5\tweb\n") {
		t.Errorf("hosts file = %q, %v; want the pod IP for its hostname", hosts, err)
	}
	if resolv, err := os.ReadFile(filepath.Join(e.root, id, sandbox.ResolvConf)); string(resolv) != "nameserver 192.0.2.53\n" {
		t.Errorf("resolv.conf = %q, %v; want the host's", resolv, err)
	}

	st, err := e.svc.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.PodSandboxStatus{
		Id:        id,
		Metadata:  cfg.Metadata,
		State:     runtimeapi.PodSandboxState_SANDBOX_READY,
		CreatedAt: testNow.UnixNano(),
		Network: &runtimeapi.PodSandboxNetworkStatus{
			Ip: "10.88.0.5", AdditionalIps: []*runtimeapi.PodIP{{Ip: "fd00::5"}},
		},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD,
		}}},
		Labels:      cfg.Labels,
		Annotations: cfg.Annotations,
	}
	if diff := cmp.Diff(want, st.Status, protocmp.Transform()); diff != "" {
		t.Errorf("PodSandboxStatus (-want +got):\n%s", diff)
	}
	// A unique prefix of the ID works as the ID, as with Docker.
	if st, err := e.svc.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id[:12]}); err != nil || st.Status.Id != id {
		t.Errorf("PodSandboxStatus(prefix) = %v, %v", st, err)
	}
}

func TestRunPodSandboxHostNetwork(t *testing.T) {
	e := newEnv(t)
	id := e.runSandbox(t, hostNetwork(sandboxConfig("node-agent")))

	if n := len(e.net.Setups()); n != 0 {
		t.Errorf("%d network Setup calls for a host-network pod, want none", n)
	}
	cp, err := e.store.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if !cp.HostNetwork || !cp.NetworkReady || cp.IPs != nil {
		t.Errorf("checkpoint = %+v, want host network, ready, no IPs", cp)
	}
	c, _ := e.docker.Container(id)
	if !c.HostConfig.NetworkMode.IsHost() {
		t.Errorf("pause container network mode = %q, want host", c.HostConfig.NetworkMode)
	}
	st, err := e.svc.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.Network != nil ||
		st.Status.Linux.Namespaces.Options.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("status = %v, want READY, no pod IP, network NODE", st.Status)
	}
	if _, err := e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.net.Teardowns()); n != 0 {
		t.Errorf("%d network Teardown calls for a host-network pod, want none", n)
	}
}

// TestRunPodSandboxRollback checks that a RunPodSandbox that fails part way
// leaves nothing behind: no container, no checkpoint, no network.
func TestRunPodSandboxRollback(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		// arrange prepares the failure; it may return a context for the
		// request.
		arrange       func(e *env, ctx context.Context, cancel context.CancelFunc)
		wantErr       func(error) bool
		wantTeardowns int
	}{
		{
			name: "docker create fails",
			arrange: func(e *env, _ context.Context, _ context.CancelFunc) {
				e.docker.InjectError("ContainerCreate", fmt.Errorf("daemon: %w", errdefs.ErrUnavailable))
			},
			wantErr: errdefs.IsUnavailable,
		},
		{
			name: "docker start fails",
			arrange: func(e *env, _ context.Context, _ context.CancelFunc) {
				e.docker.InjectError("ContainerStart", errBoom)
			},
			wantErr: func(err error) bool { return errors.Is(err, errBoom) },
		},
		{
			name: "inspect after start fails",
			arrange: func(e *env, _ context.Context, _ context.CancelFunc) {
				// The first inspect is ImageInspect of the pause image;
				// ContainerInspect is called once, after start.
				e.docker.InjectError("ContainerInspect", errBoom)
			},
			wantErr: func(err error) bool { return errors.Is(err, errBoom) },
		},
		{
			name: "network setup fails",
			arrange: func(e *env, _ context.Context, _ context.CancelFunc) {
				e.net.setupErr = errBoom
			},
			wantErr:       func(err error) bool { return errors.Is(err, errBoom) },
			wantTeardowns: 1,
		},
		{
			// The rollback must run on a fresh context: the request's
			// is what was cancelled.
			name: "request cancelled during network setup",
			arrange: func(e *env, _ context.Context, cancel context.CancelFunc) {
				e.net.onSetup = func(context.Context) { cancel() }
			},
			wantErr:       func(err error) bool { return errors.Is(err, context.Canceled) },
			wantTeardowns: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.arrange(e, ctx, cancel)

			_, err := e.svc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig("web")})
			if err == nil || !tt.wantErr(err) {
				t.Fatalf("RunPodSandbox: err = %v, want the failure", err)
			}
			if cs := e.docker.Containers(); len(cs) != 0 {
				t.Errorf("containers left: %s", cs[0].Name)
			}
			if entries, _ := os.ReadDir(e.root); len(entries) != 0 {
				t.Errorf("sandbox store not empty: %v", entries)
			}
			teardowns := e.net.Teardowns()
			if len(teardowns) != tt.wantTeardowns {
				t.Fatalf("%d Teardown calls, want %d", len(teardowns), tt.wantTeardowns)
			}
			if tt.wantTeardowns > 0 {
				// Undo exactly what was set up, in the same namespace.
				if diff := cmp.Diff(e.net.Setups()[0], teardowns[0]); diff != "" {
					t.Errorf("Teardown differs from Setup (-setup +teardown):\n%s", diff)
				}
			}
			// Once the failure is gone, the same pod can be made: its
			// name is free again.
			e.net.setupErr, e.net.onSetup = nil, nil
			e.runSandbox(t, sandboxConfig("web"))
		})
	}
}

func TestRunPodSandboxPauseImageMissing(t *testing.T) {
	e := newEnv(t)
	if _, err := e.docker.ImageRemove(context.Background(), testPauseImage, client.ImageRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig("web")})
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("err = %v, want failed precondition", err)
	}
	if !strings.Contains(err.Error(), testPauseImage) {
		t.Errorf("error %q does not name the pause image", err)
	}
	if n := count(e.docker, "ContainerCreate"); n != 0 {
		t.Errorf("%d ContainerCreate calls, want none", n)
	}
}

func TestRunPodSandboxInvalid(t *testing.T) {
	tests := []struct {
		name  string
		req   *runtimeapi.RunPodSandboxRequest
		field string
	}{
		{"nil config", &runtimeapi.RunPodSandboxRequest{}, "config"},
		{"no metadata", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}, "config.metadata"},
		{"empty name", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }), "config.metadata.name"},
		{"empty namespace", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }), "config.metadata.namespace"},
		{"empty uid", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }), "config.metadata.uid"},
		{"underscore in name", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "a_b" }), "config.metadata.name"},
		{"slash in uid", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "a/b" }), "config.metadata.uid"},
		{"relative log_directory", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "var/log/pods/x" }), "config.log_directory"},
		{"log_directory climbing", runRequest(func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/../../etc" }), "config.log_directory"},
		{"newline in dns server", runRequest(func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1\nsearch evil"}}
		}), "config.dns_config.servers[0]"},
		{"runtime handler", &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig("web"), RuntimeHandler: "kata"}, "runtime_handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.svc.RunPodSandbox(context.Background(), tt.req)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err = %v, want invalid argument", err)
			}
			if got := field(err); got != tt.field {
				t.Errorf("error %q names field %q, want %q", err, got, tt.field)
			}
			if n := count(e.docker, "ContainerCreate"); n != 0 {
				t.Errorf("%d ContainerCreate calls, want none", n)
			}
		})
	}
}

func runRequest(f func(*runtimeapi.PodSandboxConfig)) *runtimeapi.RunPodSandboxRequest {
	cfg := sandboxConfig("web")
	f(cfg)
	return &runtimeapi.RunPodSandboxRequest{Config: cfg}
}

func TestRunPodSandboxNameInUse(t *testing.T) {
	e := newEnv(t)
	id := e.runSandbox(t, sandboxConfig("web"))
	_, err := e.svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig("web")})
	if !errdefs.IsConflict(err) {
		t.Fatalf("second RunPodSandbox of one attempt: err = %v, want conflict", err)
	}
	// The failed attempt must not touch the sandbox that owns the name.
	if cp, err := e.store.Read(id); err != nil || !cp.NetworkReady {
		t.Errorf("first sandbox's checkpoint = %+v, %v", cp, err)
	}
	if n := len(e.net.Teardowns()); n != 0 {
		t.Errorf("%d Teardown calls, want none", n)
	}
}
