package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroupScript prints the container's CPU and memory limits from its
// cgroup v1 files every 0.2 s.
const cgroupScript = `while :; do
echo "limits=shares:$(cat /sys/fs/cgroup/cpu/cpu.shares) quota:$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period:$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us) memory:$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
sleep 0.2; done`

// TestFeaturesUpdateResources checks the limits a container starts with
// and that UpdateContainerResources changes them in its cgroup, in Docker
// and in ContainerStatus.
func TestFeaturesUpdateResources(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("resources", nil)
	initial := &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 64 << 20}
	cfg := containerConfig("limited", cgroupScript)
	cfg.Linux.Resources = initial
	id := e.runContainer(podID, pod, cfg)
	e.checkLimits(id, initial)

	for _, r := range []*runtimeapi.LinuxContainerResources{
		// Lower limits first, then higher than the container was created
		// with, as a vertical resize does.
		{CpuShares: 256, CpuPeriod: 100000, CpuQuota: 20000, MemoryLimitInBytes: 48 << 20},
		{CpuShares: 2048, CpuPeriod: 50000, CpuQuota: 100000, MemoryLimitInBytes: 256 << 20},
	} {
		if _, err := e.rt.UpdateContainerResources(e.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: r}); err != nil {
			t.Errorf("UpdateContainerResources to %v: %v", r, err)
			continue
		}
		e.checkLimits(id, r)
	}
}

// checkLimits checks r in the container's cgroup files, Docker's inspect
// and ContainerStatus.resources.
func (e *env) checkLimits(id string, r *runtimeapi.LinuxContainerResources) {
	e.t.Helper()
	want := fmt.Sprintf("limits=shares:%d quota:%d period:%d memory:%d", r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitInBytes)
	deadline := time.Now().Add(5 * time.Second)
	for {
		kv := keyValues(e.output(id))
		if "limits="+kv["limits"] == want {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("container's cgroup says %q, want %q", "limits="+kv["limits"], want)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	ins, err := e.s.docker.ContainerInspect(e.ctx(), id, client.ContainerInspectOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	hr := ins.Container.HostConfig.Resources
	if hr.CPUShares != r.CpuShares || hr.CPUQuota != r.CpuQuota || hr.CPUPeriod != r.CpuPeriod || hr.Memory != r.MemoryLimitInBytes {
		e.t.Errorf("docker inspect: shares %d quota %d period %d memory %d, want %d %d %d %d",
			hr.CPUShares, hr.CPUQuota, hr.CPUPeriod, hr.Memory, r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitInBytes)
	}

	got := e.containerStatus(id).GetResources().GetLinux()
	if got.GetCpuShares() != r.CpuShares || got.GetCpuQuota() != r.CpuQuota || got.GetCpuPeriod() != r.CpuPeriod ||
		got.GetMemoryLimitInBytes() != r.MemoryLimitInBytes {
		e.t.Errorf("ContainerStatus.resources.linux = %s, want %s", mustJSON(got), mustJSON(r))
	}
}
