package translate

import (
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const resourcesField = "config.linux.resources"

// Bounds of oom_score_adj in the kernel.
const (
	minOOMScoreAdj = -1000
	maxOOMScoreAdj = 1000
)

// sandboxOOMScoreAdj is the pause container's: it holds the pod's
// namespaces, so it should be nearly the last thing killed (the kubelet's
// own value for it).
const sandboxOOMScoreAdj = -998

// resources sets a container's cgroup limits.
func (b *builder) resources(r *runtimeapi.LinuxContainerResources) error {
	for _, f := range []struct {
		name     string
		value    int64
		minValue int64
	}{
		{"cpu_period", r.GetCpuPeriod(), 0},
		// -1 is cgroup v1's "no limit".
		{"cpu_quota", r.GetCpuQuota(), -1},
		{"cpu_shares", r.GetCpuShares(), 0},
		{"memory_limit_in_bytes", r.GetMemoryLimitInBytes(), 0},
		{"memory_swap_limit_in_bytes", r.GetMemorySwapLimitInBytes(), -1},
	} {
		if f.value < f.minValue {
			return invalidf(resourcesField+"."+f.name, "%d is below %d", f.value, f.minValue)
		}
	}
	hc := b.hostCfg
	hc.CPUPeriod = r.GetCpuPeriod()
	hc.CPUQuota = r.GetCpuQuota()
	hc.CPUShares = r.GetCpuShares()
	hc.CpusetCpus = r.GetCpusetCpus()
	hc.CpusetMems = r.GetCpusetMems()
	hc.Memory = r.GetMemoryLimitInBytes()

	if hc.Memory > 0 && r.GetMemorySwapLimitInBytes() == 0 {
		// Unset swap means no swap, as the kubelet means it. Docker would
		// otherwise set memory+swap to twice the memory at create, and
		// then refuse to raise memory past that on update.
		hc.MemorySwap = hc.Memory
	}
	if swap := r.GetMemorySwapLimitInBytes(); swap != 0 {
		const field = resourcesField + ".memory_swap_limit_in_bytes"
		switch {
		case hc.Memory == 0:
			// Docker refuses a swap limit without a memory limit.
			b.warnf(field, "ignored: Docker cannot limit swap without memory_limit_in_bytes")
		case swap != -1 && swap < hc.Memory:
			// memory + swap, as in cgroup v1: it cannot be below memory.
			return invalidf(field, "%d is below memory_limit_in_bytes %d", swap, hc.Memory)
		default:
			hc.MemorySwap = swap
		}
	}

	adj, err := b.oomScoreAdj(r.GetOomScoreAdj())
	if err != nil {
		return err
	}
	hc.OomScoreAdj = adj

	var pageSizes []string
	for _, l := range r.GetHugepageLimits() {
		// The kubelet lists every page size the node has, with limit 0
		// when the pod asks for none; only real limits are lost.
		if l.GetLimit() != 0 {
			pageSizes = append(pageSizes, l.GetPageSize())
		}
	}
	if len(pageSizes) > 0 {
		b.warnf(resourcesField+".hugepage_limits", "ignored (%s): Docker cannot limit hugepages", strings.Join(pageSizes, ", "))
	}
	if len(r.GetUnified()) > 0 {
		b.warnf(resourcesField+".unified", "ignored (%s): Docker cannot set cgroup v2 files directly",
			strings.Join(slices.Sorted(maps.Keys(r.GetUnified())), ", "))
	}
	return nil
}

// oomScoreAdj checks v and raises it to the lowest value the host allows:
// without CAP_SYS_RESOURCE runc cannot go below its own value, and a
// Guaranteed pod (-997) must still start there.
func (b *builder) oomScoreAdj(v int64) (int, error) {
	if v < minOOMScoreAdj || v > maxOOMScoreAdj {
		return 0, invalidf(resourcesField+".oom_score_adj", "%d out of range [%d, %d]", v, minOOMScoreAdj, maxOOMScoreAdj)
	}
	if v < int64(b.host.MinOOMScoreAdj) {
		b.warnf(resourcesField+".oom_score_adj", "%d raised to %d, the lowest this host allows", v, b.host.MinOOMScoreAdj)
		return b.host.MinOOMScoreAdj, nil
	}
	return int(v), nil
}

// cgroupParent converts the kubelet's cgroup parent for Docker. With the
// systemd driver the kubelet sends the slice's full path
// ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice")
// while Docker wants the slice's name and expands it itself.
func (b *builder) cgroupParent(field, parent string) (string, error) {
	if parent == "" || !b.host.SystemdCgroup {
		return parent, nil
	}
	name := path.Base(parent)
	if !strings.HasSuffix(name, ".slice") {
		return "", invalidf(field, "%q is not a systemd slice, as Docker's systemd cgroup driver needs", parent)
	}
	return name, nil
}

// Resources translates new limits for a running container
// (UpdateContainerResources). Docker cannot change oom_score_adj after
// start, as no runtime can, so it is checked but not applied.
func Resources(r *runtimeapi.LinuxContainerResources, h Host) (container.Resources, []string, error) {
	if r == nil {
		return container.Resources{}, nil, invalidf("linux", "missing")
	}
	b := newBuilder(h)
	if err := b.resources(r); err != nil {
		return container.Resources{}, nil, err
	}
	return b.hostCfg.Resources, b.warnings, nil
}
