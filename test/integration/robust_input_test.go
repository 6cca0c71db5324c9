package integration

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRobustBadInput sends requests berth must refuse: each is
// InvalidArgument, names the offending field, and leaves no container,
// sandbox directory or IP allocation behind.
func TestRobustBadInput(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("good")
	podID := e.runPod(pod)
	leaks := func() leakState { return takeLeakState(t, e.root, e.allocatedIPs) }

	hostNet := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	sandboxCases := []struct {
		name   string
		mutate func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig
		fields []string
	}{
		{"nil config", func(*runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig { return nil }, []string{"config"}},
		{"missing metadata", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Metadata = nil
			return c
		}, []string{"config.metadata"}},
		{"empty uid", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Metadata.Uid = ""
			return c
		}, []string{"config.metadata.uid"}},
		{"relative log directory", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.LogDirectory = "var/log/pods/x"
			return c
		}, []string{"config.log_directory"}},
		{"log directory with dotdot", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.LogDirectory = "/var/log/pods/../../etc"
			return c
		}, []string{"config.log_directory"}},
		{"net sysctl with host network", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.SecurityContext = hostNet
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
			return c
		}, []string{"sysctls", "net.ipv4.ip_forward"}},
		{"sysctl value with newline", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "0\nkernel.hostname=evil"}
			return c
		}, []string{"sysctls", "kernel.shm_rmid_forced"}},
		{"sysctl value with plus", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_local_port_range": "1024+65535"}
			return c
		}, []string{"sysctls", "net.ipv4.ip_local_port_range"}},
		{"uts sysctl with host network", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.SecurityContext = hostNet
			c.Linux.Sysctls = map[string]string{"kernel.domainname": "example"}
			return c
		}, []string{"sysctls", "kernel.domainname"}},
		{"ipc sysctl with host ipc", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}}
			c.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1"}
			return c
		}, []string{"sysctls", "kernel.shm_rmid_forced"}},
		{"node-wide sysctl", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.Sysctls = map[string]string{"vm.swappiness": "10"}
			return c
		}, []string{"sysctls", "vm.swappiness"}},
		{"sandbox run_as_user -1", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: -1}}
			return c
		}, []string{"run_as_user"}},
		{"sandbox supplemental group 2^31", func(c *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{SupplementalGroups: []int64{math.MaxInt32 + 1}}
			return c
		}, []string{"supplemental_groups"}},
	}
	for _, tc := range sandboxCases {
		t.Run("RunPodSandbox/"+tc.name, func(t *testing.T) {
			before := leaks()
			_, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: tc.mutate(e.podConfig("bad"))})
			wantCode(t, err, codes.InvalidArgument, tc.fields...)
			before.assertSame(t, leaks())
		})
	}

	uid := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	containerCases := []struct {
		name   string
		mutate func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig
		fields []string
	}{
		{"nil config", func(*runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig { return nil }, []string{"config"}},
		{"missing metadata", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Metadata = nil
			return c
		}, []string{"config.metadata"}},
		{"absolute log path", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.LogPath = "/var/log/evil.log"
			return c
		}, []string{"config.log_path"}},
		{"log path with dotdot", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.LogPath = "c/../../../evil.log"
			return c
		}, []string{"config.log_path"}},
		{"relative mount container path", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "/tmp", ContainerPath: "data"}}
			return c
		}, []string{"config.mounts[0].container_path"}},
		{"mount host path with dotdot", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "/tmp/../etc", ContainerPath: "/data"}}
			return c
		}, []string{"config.mounts[0].host_path"}},
		{"run_as_user 2^31", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsUser: uid(math.MaxInt32 + 1)}
			return c
		}, []string{"run_as_user"}},
		{"run_as_group -1", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsUser: uid(1000), RunAsGroup: uid(-1)}
			return c
		}, []string{"run_as_group"}},
		{"supplemental group 2^32", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{1 << 32}}
			return c
		}, []string{"supplemental_groups"}},
		{"run_as_user -1", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsUser: uid(-1)}
			return c
		}, []string{"run_as_user"}},
		{"run_as_group 2^31", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsUser: uid(0), RunAsGroup: uid(math.MaxInt32 + 1)}
			return c
		}, []string{"run_as_group"}},
		{"relative mount host path", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "tmp", ContainerPath: "/data"}}
			return c
		}, []string{"config.mounts[0].host_path"}},
		{"second mount container path with dotdot", func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "/tmp", ContainerPath: "/ok"}, {HostPath: "/tmp", ContainerPath: "/data/../etc"}}
			return c
		}, []string{"config.mounts[1].container_path"}},
	}
	for i, tc := range containerCases {
		t.Run("CreateContainer/"+tc.name, func(t *testing.T) {
			before := leaks()
			cfg := tc.mutate(containerConfig("bad"+strings.Repeat("x", i), "sleep 1"))
			_, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			wantCode(t, err, codes.InvalidArgument, tc.fields...)
			before.assertSame(t, leaks())
		})
	}

	t.Run("CreateContainer/nil sandbox config", func(t *testing.T) {
		before := leaks()
		_, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("nosbcfg", "true")})
		wantCode(t, err, codes.InvalidArgument, "sandbox_config")
		before.assertSame(t, leaks())
	})

	// The edges of the ranges are valid: the checks are not stricter than
	// the rules.
	t.Run("CreateContainer/ids at the edges accepted", func(t *testing.T) {
		cfg := containerConfig("edges", "id -u; id -g; id -G")
		cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsUser: uid(math.MaxInt32), RunAsGroup: uid(0),
			SupplementalGroups: []int64{math.MaxInt32}}
		cid := e.runContainer(podID, pod, cfg)
		e.waitExit(cid, 10*time.Second)
		out := e.output(cid)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		max := fmt.Sprint(math.MaxInt32)
		if len(lines) != 3 || lines[0] != max || lines[1] != "0" || !slices.Contains(strings.Fields(lines[2]), max) {
			t.Errorf("container with uid 2^31-1, gid 0, group 2^31-1 printed:\n%s", out)
		}
		if _, err := e.rt.RemoveContainer(e.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: cid}); err != nil {
			t.Fatal(err)
		}
	})

	// The good pod is untouched by all of this.
	st, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("good pod state = %v after the bad requests", st.Status.State)
	}
	ctrs, err := e.rt.ListContainers(e.ctx(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs.Containers) != 0 {
		t.Errorf("good pod has containers %s", mustJSON(ctrs.Containers))
	}
}

// TestRobustUnknownIDs: Status, Start and Update of an unknown id are
// NotFound; Stop and Remove of one succeed, twice in a row.
func TestRobustUnknownIDs(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	for _, id := range []string{randomID(t), "0123456789ab", "no-such-thing"} {
		t.Run(id, func(t *testing.T) {
			before := takeLeakState(t, e.root, e.allocatedIPs)
			_, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
			wantCode(t, err, codes.NotFound)
			_, err = e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			wantCode(t, err, codes.NotFound)
			_, err = e.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
			wantCode(t, err, codes.NotFound)
			_, err = e.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id,
				Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512}})
			wantCode(t, err, codes.NotFound)
			for i := 0; i < 2; i++ {
				if _, err := e.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
					t.Errorf("StopContainer #%d: %v", i+1, err)
				}
				if _, err := e.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
					t.Errorf("RemoveContainer #%d: %v", i+1, err)
				}
				if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
					t.Errorf("StopPodSandbox #%d: %v", i+1, err)
				}
				if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
					t.Errorf("RemovePodSandbox #%d: %v", i+1, err)
				}
			}
			before.assertSame(t, takeLeakState(t, e.root, e.allocatedIPs))
		})
	}
}

// TestRobustAlreadyExists: a second sandbox or container with the same
// metadata is AlreadyExists, and the first is untouched.
func TestRobustAlreadyExists(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	pod := e.podConfig("dup")
	pod.Metadata.Attempt = 3
	podID := e.runPod(pod)
	st1, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("RunPodSandbox", func(t *testing.T) {
		before := takeLeakState(t, e.root, e.allocatedIPs)
		again := e.podConfig("dup")
		again.Metadata = pod.Metadata
		again.Labels["second"] = "true"
		_, err := e.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: again})
		wantCode(t, err, codes.AlreadyExists)
		before.assertSame(t, takeLeakState(t, e.root, e.allocatedIPs))

		st2, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
		if err != nil {
			t.Fatalf("first pod after the duplicate: %v", err)
		}
		if st2.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st2.Status.GetNetwork().GetIp() != st1.Status.GetNetwork().GetIp() ||
			st2.Status.Labels["second"] != "" {
			t.Errorf("first pod changed:\nbefore %s\nafter %s", mustJSON(st1.Status), mustJSON(st2.Status))
		}
		if ips := e.allocatedIPs(); len(ips) != 1 || ips[0] != st1.Status.GetNetwork().GetIp() {
			t.Errorf("IP allocations %v, want only the first pod's %s", ips, st1.Status.GetNetwork().GetIp())
		}
	})

	t.Run("CreateContainer", func(t *testing.T) {
		cfg := containerConfig("twin", "sleep 3600")
		cfg.Metadata.Attempt = 2
		first, err := e.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if err != nil {
			t.Fatal(err)
		}
		before := takeLeakState(t, e.root, e.allocatedIPs)
		again := containerConfig("twin", "echo second; sleep 3600")
		again.Metadata.Attempt = 2
		_, err = e.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: again, SandboxConfig: pod})
		wantCode(t, err, codes.AlreadyExists)
		before.assertSame(t, takeLeakState(t, e.root, e.allocatedIPs))

		cs, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: first.ContainerId})
		if err != nil {
			t.Fatalf("first container after the duplicate: %v", err)
		}
		if cs.Status.State != runtimeapi.ContainerState_CONTAINER_CREATED || cs.Status.Metadata.GetAttempt() != 2 {
			t.Errorf("first container = %s", mustJSON(cs.Status))
		}
		if _, err := e.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: first.ContainerId}); err != nil {
			t.Errorf("start the first container: %v", err)
		}
	})
}

// TestRobustWrongState: StartContainer on a running container and
// CreateContainer in a stopped sandbox are FailedPrecondition.
func TestRobustWrongState(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	pod := e.podConfig("state")
	podID := e.runPod(pod)
	cid := e.runContainer(podID, pod, containerConfig("runner", "sleep 3600"))

	t.Run("StartContainer running", func(t *testing.T) {
		_, err := e.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cid})
		wantCode(t, err, codes.FailedPrecondition)
		cs, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
		if err != nil {
			t.Fatal(err)
		}
		if cs.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container state = %v after the refused start", cs.Status.State)
		}
	})

	t.Run("StartContainer exited", func(t *testing.T) {
		done := e.runContainer(podID, pod, containerConfig("oneshot", "true"))
		e.waitExit(done, 10*time.Second)
		_, err := e.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: done})
		wantCode(t, err, codes.FailedPrecondition)
	})

	t.Run("CreateContainer in stopped sandbox", func(t *testing.T) {
		if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
		before := takeLeakState(t, e.root, e.allocatedIPs)
		_, err := e.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID,
			Config: containerConfig("late", "sleep 1"), SandboxConfig: pod})
		wantCode(t, err, codes.FailedPrecondition)
		before.assertSame(t, takeLeakState(t, e.root, e.allocatedIPs))
	})
}

// TestRobustMissingImage: CreateContainer from an image Docker does not
// have is NotFound and names the image.
func TestRobustMissingImage(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("noimg")
	podID := e.runPod(pod)
	before := takeLeakState(t, e.root, e.allocatedIPs)
	cfg := containerConfig("ghost", "true")
	cfg.Image.Image = "berth.local/no-such-image:robust"
	_, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	wantCode(t, err, codes.NotFound, "berth.local/no-such-image:robust")
	before.assertSame(t, takeLeakState(t, e.root, e.allocatedIPs))
}
