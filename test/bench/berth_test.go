//go:build linux

package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/cri"
	"github.com/berth-project/berth/internal/criserver"
	"github.com/berth-project/berth/internal/docker"
	"github.com/berth-project/berth/internal/host"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/moby/moby/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// berth is a berth server started in-process, wired as `berth serve`
// wires it, with Docker and CNI timed, and a CRI client on its socket.
type berth struct {
	env     *env
	rec     *recorder
	root    string
	runtime runtimeapi.RuntimeServiceClient

	mu   sync.Mutex
	live map[string]bool // sandboxes not yet removed
}

// startBerth serves berth on a temporary socket with a temporary root
// and the env's network config. Its pods are removed, and the server
// stopped, when tb ends.
func startBerth(tb testing.TB, e *env, rec *recorder) *berth {
	tb.Helper()
	root := tb.TempDir()
	h, err := host.Detect()
	if err != nil {
		tb.Fatalf("detect host limits: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if info, err := e.docker.Info(ctx, client.InfoOptions{}); err == nil {
		h.SystemdCgroup = info.Info.CgroupDriver == "systemd"
	}
	// A client of berth's own, as serve makes one.
	dc, err := docker.New(e.docker.DaemonHost())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dc.Close() })
	if _, err := dc.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		tb.Fatalf("bench: dockerd does not answer: %v", err)
	}
	net, err := network.New(network.Options{ConfDir: e.confDir, BinDirs: e.binDirs, CacheDir: filepath.Join(root, "cni-cache")})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := sandbox.NewStore(filepath.Join(root, "sandboxes"))
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := cri.New(cri.Options{
		Docker: tracedDocker{dc, rec}, Network: tracedNetwork{net, rec}, Sandboxes: store, Host: h,
		PauseImage: pauseImage, HostResolvConf: "/etc/resolv.conf", Logger: newRPCLog(rec),
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := criserver.New(criserver.Options{Service: svc, Logger: newRPCLog(rec)})
	if err != nil {
		tb.Fatal(err)
	}
	sock := filepath.Join(root, "berth.sock")
	l, err := criserver.Listen("unix://" + sock)
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	tb.Cleanup(func() {
		srv.Stop(5 * time.Second)
		if err := <-served; err != nil {
			tb.Errorf("berth server: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })

	b := &berth{env: e, rec: rec, root: root, runtime: runtimeapi.NewRuntimeServiceClient(conn), live: map[string]bool{}}
	// Registered after the server's cleanup, so it runs before it: pods
	// are removed through berth while it still serves.
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		for id := range b.live {
			if _, err := b.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				tb.Errorf("cleanup: remove sandbox %s: %v", id, err)
			}
		}
	})
	if _, err := b.runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		tb.Fatalf("berth Version: %v", err)
	}
	return b
}

// berthPod is a pod berth started.
type berthPod struct {
	sandboxID, containerID string
}

func (b *berth) sandboxConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: b.env.namespace, Uid: "uid-" + name},
		Hostname: name,
		Labels:   map[string]string{runLabel: b.env.runID},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: podNamespaces, Seccomp: unconfined},
		},
	}
}

// What the kubelet sends for a pod with no securityContext (and
// --seccomp-default off), and what the direct sequences ask Docker for.
var (
	// podNamespaces is one network, IPC and PID namespace for the pod.
	podNamespaces = &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD,
	}
	unconfined = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	// The kubelet's default masked and read-only paths
	// (pkg/securitycontext of k8s.io/kubernetes).
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// rpc times one CRI call as the step rpc, scoping the Docker and CNI calls
// berth makes meanwhile under it.
func (b *berth) rpc(rpc string, fn func() error) error {
	b.rec.setScope(rpc)
	start := time.Now()
	err := fn()
	b.rec.setScope("")
	b.rec.add(rpc, time.Since(start))
	if err != nil {
		return fmt.Errorf("%s: %w", rpc, err)
	}
	return nil
}

// start runs RunPodSandbox, CreateContainer and StartContainer of a
// busybox `sleep 3600`.
func (b *berth) start(ctx context.Context, name string) (berthPod, error) {
	var p berthPod
	sb := b.sandboxConfig(name)
	err := b.rpc("RunPodSandbox", func() error {
		res, err := b.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sb})
		if err == nil {
			p.sandboxID = res.GetPodSandboxId()
		}
		return err
	})
	if p.sandboxID != "" {
		b.mu.Lock()
		b.live[p.sandboxID] = true
		b.mu.Unlock()
	}
	if err != nil {
		return p, err
	}
	err = b.rpc("CreateContainer", func() error {
		res, err := b.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: p.sandboxID,
			Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
				Image:    &runtimeapi.ImageSpec{Image: busyboxImage},
				Command:  []string{"sleep", "3600"},
				Linux: &runtimeapi.LinuxContainerConfig{
					SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
						NamespaceOptions: podNamespaces, Seccomp: unconfined,
						MaskedPaths: maskedPaths, ReadonlyPaths: readonlyPaths,
					},
				},
			},
			SandboxConfig: sb,
		})
		if err == nil {
			p.containerID = res.GetContainerId()
		}
		return err
	})
	if err != nil {
		return p, err
	}
	err = b.rpc("StartContainer", func() error {
		_, err := b.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.containerID})
		return err
	})
	return p, err
}

// teardown runs StopContainer (timeout 0), StopPodSandbox and
// RemovePodSandbox, as the kubelet does when a pod is deleted.
func (b *berth) teardown(ctx context.Context, p berthPod) error {
	if p.containerID != "" {
		if err := b.rpc("StopContainer", func() error {
			_, err := b.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: p.containerID, Timeout: 0})
			return err
		}); err != nil {
			return err
		}
	}
	if err := b.rpc("StopPodSandbox", func() error {
		_, err := b.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.sandboxID})
		return err
	}); err != nil {
		return err
	}
	if err := b.rpc("RemovePodSandbox", func() error {
		_, err := b.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.sandboxID})
		return err
	}); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.live, p.sandboxID)
	b.mu.Unlock()
	return nil
}
