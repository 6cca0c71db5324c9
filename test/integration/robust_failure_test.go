package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustDockerUnavailable: with dockerd unreachable berth still
// serves; calls that need Docker are Unavailable, Status says the runtime
// is not ready, and a RunPodSandbox leaves nothing.
func TestRobustDockerUnavailable(t *testing.T) {
	requireIntegration(t)
	missing := filepath.Join(shortTempDir(t), "nonexistent.sock")
	b := newOwnBerth(t, berthOptions{DockerHost: "unix://" + missing})
	ctx := b.ctx()

	_, err := b.rt.Version(ctx, &runtimeapi.VersionRequest{})
	wantCode(t, err, codes.Unavailable)

	st, err := b.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	var runtimeReady *runtimeapi.RuntimeCondition
	for _, c := range st.GetStatus().GetConditions() {
		if c.Type == runtimeapi.RuntimeReady {
			runtimeReady = c
		}
	}
	if runtimeReady == nil || runtimeReady.Status || runtimeReady.Reason == "" || !strings.Contains(runtimeReady.Message, missing) {
		t.Errorf("RuntimeReady condition = %s, want false with a reason and a message naming %s", mustJSON(runtimeReady), missing)
	}

	before := takeLeakState(t, b.root, func() []string { return nil })
	_, err = b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: b.podConfig("nodocker")})
	wantCode(t, err, codes.Unavailable)
	before.assertSame(t, takeLeakState(t, b.root, func() []string { return nil }))
	if dirs := b.sandboxDirs(); len(dirs) != 0 {
		t.Errorf("sandbox dirs %v", dirs)
	}

	_, err = b.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	wantCode(t, err, codes.Unavailable)
	_, err = b.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	wantCode(t, err, codes.Unavailable)
	_, err = b.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
	wantCode(t, err, codes.Unavailable)

	// Without Docker berth cannot know an object is gone: neither "not
	// found" nor an idempotent success may be claimed.
	id := randomID(t)
	image := &runtimeapi.ImageSpec{Image: busybox}
	for name, call := range map[string]func() error{
		"ImageStatus": func() error {
			_, err := b.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: image})
			return err
		},
		"ListImages": func() error { _, err := b.img.ListImages(ctx, &runtimeapi.ListImagesRequest{}); return err },
		"RemoveImage": func() error {
			_, err := b.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: image})
			return err
		},
		"PodSandboxStatus": func() error {
			_, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
			return err
		},
		"StopPodSandbox": func() error {
			_, err := b.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			return err
		},
		"RemovePodSandbox": func() error {
			_, err := b.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
			return err
		},
		"ContainerStatus": func() error {
			_, err := b.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			return err
		},
		"StopContainer": func() error {
			_, err := b.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id})
			return err
		},
		"RemoveContainer": func() error {
			_, err := b.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), codes.Unavailable) })
	}
}

// TestRobustDockerComesBack: a berth started while dockerd is unreachable
// serves normally once it answers.
func TestRobustDockerComesBack(t *testing.T) {
	requireIntegration(t)
	sock := filepath.Join(shortTempDir(t), "docker.sock")
	n := newCNINet(t, cniNetOptions{})
	b := newOwnBerth(t, berthOptions{DockerHost: "unix://" + sock, CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})
	ctx := b.ctx()
	if _, err := b.rt.Version(ctx, &runtimeapi.VersionRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("Version before dockerd answers: %v, want Unavailable", err)
	}
	newDockerProxyAt(t, sock)

	st, err := b.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if !c.Status {
			t.Errorf("condition %s false once dockerd answers: %s", c.Type, mustJSON(c))
		}
	}
	v, err := b.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeVersion == "" {
		t.Fatalf("Version once dockerd answers: %v %s", err, mustJSON(v))
	}
	pod := b.podConfig("back")
	podID := b.runPod(pod)
	cid := b.runContainer(podID, pod, containerConfig("main", "echo hello; sleep 3600"))
	if out := waitFor(10*time.Second, func() string {
		if strings.Contains(dockerOutput(t, cid), "hello") {
			return ""
		}
		return "no output"
	}); out != "" {
		t.Errorf("container: %s", out)
	}
	pst, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if pst.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || pst.Status.GetNetwork().GetIp() == "" {
		t.Errorf("pod status %s", mustJSON(pst.Status))
	}
}

// TestRobustFailingCNI: when the pod network cannot be set up,
// RunPodSandbox fails and leaves no container, checkpoint, IP allocation
// or veth.
func TestRobustFailingCNI(t *testing.T) {
	cases := []struct {
		name  string
		opts  cniNetOptions
		setup func(t *testing.T, n *cniNet)
		// allocates: the chain allocates an address before it fails,
		// so the rollback has something to release.
		allocates bool
	}{
		{
			name: "exhausted range",
			opts: cniNetOptions{RangeStart: 10, RangeEnd: 10},
			setup: func(t *testing.T, n *cniNet) {
				dir := filepath.Join(n.dataDir, n.name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, n.host(10)), []byte("someone-else\r\neth0"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:      "plugin after bridge fails",
			opts:      cniNetOptions{Plugins: []string{`{"type":"robust-fail"}`}},
			setup:     func(_ *testing.T, n *cniNet) { n.addPlugin("robust-fail", failPlugin) },
			allocates: true,
		},
		{
			name: "plugin not installed",
			opts: cniNetOptions{Plugins: []string{`{"type":"robust-no-such-plugin"}`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newCNINet(t, tc.opts)
			if tc.setup != nil {
				tc.setup(t, n)
			}
			b := newOwnBerth(t, berthOptions{CNIConfDir: n.confDir, CNIBinDirs: n.binDirs()})
			before := takeLeakState(t, b.root, n.allocatedIPs)
			cniCache := cacheEntries(b.root)

			// Watch the allocations while the call runs: an address
			// allocated, then released, shows the rollback ran.
			seen := map[string]bool{}
			ctx, cfg := b.ctx(), b.podConfig("cnifail")
			done := make(chan error, 1)
			go func() {
				_, err := b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
				done <- err
			}()
			var err error
		wait:
			for {
				select {
				case err = <-done:
					break wait
				case <-time.After(5 * time.Millisecond):
					for _, ip := range n.allocatedIPs() {
						seen[ip] = true
					}
				}
			}
			if err == nil {
				t.Fatal("RunPodSandbox succeeded on a failing network")
			}
			if status.Code(err) == codes.OK || status.Code(err) == codes.InvalidArgument {
				t.Errorf("RunPodSandbox error %v: want a runtime failure code", err)
			}
			t.Logf("RunPodSandbox: %v (addresses seen during the call: %v)", err, seen)
			if tc.allocates && len(seen) == 0 {
				t.Errorf("no address was allocated during the call: the failure came before the network chain ran")
			}
			before.assertSame(t, takeLeakState(t, b.root, n.allocatedIPs))
			if ids := labelledContainers(t, b.label); len(ids) != 0 {
				t.Errorf("containers left: %v", ids)
			}
			if dirs := b.sandboxDirs(); len(dirs) != 0 {
				t.Errorf("sandbox dirs (checkpoints) left: %v", dirs)
			}
			if ports := n.ports(); len(ports) != 0 {
				t.Errorf("veths left on %s: %v", n.bridge, ports)
			}
			if after := cacheEntries(b.root); !slices.Equal(cniCache, after) {
				t.Errorf("CNI cache entries left: %v", after)
			}
			if pods := b.pods(); len(pods) != 0 {
				t.Errorf("ListPodSandbox shows %s", mustJSON(pods))
			}
		})
	}
}

// cacheEntries lists libcni's cached results and configs under berth's
// root.
func cacheEntries(root string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(root, "cni-cache"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	return out
}

// TestRobustPauseStartFails: a RunPodSandbox that Docker accepts but whose
// pause container cannot start (the kernel refuses a sysctl value) fails
// and leaves nothing: the rollback removes container and checkpoint.
func TestRobustPauseStartFails(t *testing.T) {
	e := newEnv(t)
	before := takeLeakState(t, e.root, e.allocatedIPs)
	cfg := e.podConfig("nostart")
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "not-a-number"}
	_, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err == nil {
		t.Fatal("RunPodSandbox succeeded with a sysctl value the kernel refuses")
	}
	t.Logf("RunPodSandbox: %v", err)
	before.assertSame(t, takeLeakState(t, e.root, e.allocatedIPs))
	if ids := labelledContainers(t, sanitize(t.Name())); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
}
