package translate

import (
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerResources(t *testing.T) {
	const field = "config.linux.resources"
	limited := limitedHost()
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "cpu and memory",
			edit: func(p *ContainerParams) {
				r := cres(p)
				r.CpuShares = 512
				r.CpuQuota = 50000
				r.CpuPeriod = 100000
				r.CpusetCpus = "0-1"
				r.CpusetMems = "0"
				r.MemoryLimitInBytes = 1 << 30
				r.MemorySwapLimitInBytes = 2 << 30
			},
			want: func(r *Result) {
				hc := r.HostConfig
				hc.CPUShares = 512
				hc.CPUQuota = 50000
				hc.CPUPeriod = 100000
				hc.CpusetCpus = "0-1"
				hc.CpusetMems = "0"
				hc.Memory = 1 << 30
				hc.MemorySwap = 2 << 30
			},
		},
		{
			// Unset swap is no swap: Docker would otherwise allow as much
			// swap as memory.
			name: "memory without swap: MemorySwap == Memory",
			edit: func(p *ContainerParams) { cres(p).MemoryLimitInBytes = 1 << 30 },
			want: func(r *Result) {
				r.HostConfig.Memory = 1 << 30
				r.HostConfig.MemorySwap = 1 << 30
			},
		},
		{
			name: "memory with explicit swap: swap kept",
			edit: func(p *ContainerParams) {
				cres(p).MemoryLimitInBytes = 1 << 30
				cres(p).MemorySwapLimitInBytes = 3 << 30
			},
			want: func(r *Result) {
				r.HostConfig.Memory = 1 << 30
				r.HostConfig.MemorySwap = 3 << 30
			},
		},
		{
			name: "swap equal to memory",
			edit: func(p *ContainerParams) {
				cres(p).MemoryLimitInBytes = 1 << 30
				cres(p).MemorySwapLimitInBytes = 1 << 30
			},
			want: func(r *Result) {
				r.HostConfig.Memory = 1 << 30
				r.HostConfig.MemorySwap = 1 << 30
			},
		},
		{
			name: "neither memory nor swap: no limits",
			edit: func(p *ContainerParams) { cres(p).CpuShares = 2 },
			want: func(r *Result) { r.HostConfig.CPUShares = 2 },
		},
		{
			name: "unlimited swap",
			edit: func(p *ContainerParams) {
				cres(p).MemoryLimitInBytes = 1 << 30
				cres(p).MemorySwapLimitInBytes = -1
			},
			want: func(r *Result) {
				r.HostConfig.Memory = 1 << 30
				r.HostConfig.MemorySwap = -1
			},
		},
		{
			name: "swap without memory is ignored with a warning",
			edit: func(p *ContainerParams) { cres(p).MemorySwapLimitInBytes = 1 << 30 },
			want: func(r *Result) {
				r.Warnings = []string{field + ".memory_swap_limit_in_bytes: ignored: Docker cannot limit swap without memory_limit_in_bytes"}
			},
		},
		{
			name: "swap below memory",
			edit: func(p *ContainerParams) {
				cres(p).MemoryLimitInBytes = 2 << 30
				cres(p).MemorySwapLimitInBytes = 1 << 30
			},
			errField: field + ".memory_swap_limit_in_bytes", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "negative memory",
			edit:     func(p *ContainerParams) { cres(p).MemoryLimitInBytes = -1 },
			errField: field + ".memory_limit_in_bytes", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "negative cpu shares",
			edit:     func(p *ContainerParams) { cres(p).CpuShares = -2 },
			errField: field + ".cpu_shares", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "negative cpu period",
			edit:     func(p *ContainerParams) { cres(p).CpuPeriod = -1 },
			errField: field + ".cpu_period", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "cpu quota -1",
			edit: func(p *ContainerParams) { cres(p).CpuQuota = -1 },
			want: func(r *Result) { r.HostConfig.CPUQuota = -1 },
		},
		{
			name:     "cpu quota below -1",
			edit:     func(p *ContainerParams) { cres(p).CpuQuota = -2 },
			errField: field + ".cpu_quota", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "swap below -1",
			edit:     func(p *ContainerParams) { cres(p).MemorySwapLimitInBytes = -2 },
			errField: field + ".memory_swap_limit_in_bytes", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "oom_score_adj within the host's range",
			edit: func(p *ContainerParams) { cres(p).OomScoreAdj = -997 },
			want: func(r *Result) { r.HostConfig.OomScoreAdj = -997 },
		},
		{
			name: "oom_score_adj 1000",
			edit: func(p *ContainerParams) { cres(p).OomScoreAdj = 1000 },
			want: func(r *Result) { r.HostConfig.OomScoreAdj = 1000 },
		},
		{
			name: "oom_score_adj raised to the host's floor",
			host: &limited,
			edit: func(p *ContainerParams) { cres(p).OomScoreAdj = -997 },
			want: func(r *Result) {
				r.HostConfig.OomScoreAdj = -500
				r.Warnings = []string{field + ".oom_score_adj: -997 raised to -500, the lowest this host allows"}
			},
		},
		{
			name:     "oom_score_adj below -1000",
			edit:     func(p *ContainerParams) { cres(p).OomScoreAdj = -1001 },
			errField: field + ".oom_score_adj", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "oom_score_adj above 1000",
			edit:     func(p *ContainerParams) { cres(p).OomScoreAdj = 1001 },
			errField: field + ".oom_score_adj", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "zero hugepage limits need nothing",
			edit: func(p *ContainerParams) {
				cres(p).HugepageLimits = []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}}
			},
		},
		{
			name: "hugepage limits warn",
			edit: func(p *ContainerParams) {
				cres(p).HugepageLimits = []*runtimeapi.HugepageLimit{
					{PageSize: "2MB", Limit: 1 << 21}, {PageSize: "1GB"}, {PageSize: "1GB", Limit: 1 << 30},
				}
			},
			want: func(r *Result) {
				r.Warnings = []string{field + ".hugepage_limits: ignored (2MB, 1GB): Docker cannot limit hugepages"}
			},
		},
		{
			name: "unified warns",
			edit: func(p *ContainerParams) {
				cres(p).Unified = map[string]string{"memory.high": "1G", "cpu.weight": "100"}
			},
			want: func(r *Result) {
				r.Warnings = []string{field + ".unified: ignored (cpu.weight, memory.high): Docker cannot set cgroup v2 files directly"}
			},
		},
	})
}

func TestContainerCgroupParent(t *testing.T) {
	systemd := fullHost()
	systemd.SystemdCgroup = true
	const slicePath = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "cgroupfs: the path as is",
			edit: func(p *ContainerParams) { p.SandboxConfig.Linux.CgroupParent = "/kubepods/pod1" },
			want: func(r *Result) { r.HostConfig.CgroupParent = "/kubepods/pod1" },
		},
		{
			name: "systemd: the slice name",
			host: &systemd,
			edit: func(p *ContainerParams) { p.SandboxConfig.Linux.CgroupParent = slicePath },
			want: func(r *Result) { r.HostConfig.CgroupParent = "kubepods-burstable-pod1.slice" },
		},
		{
			name: "systemd: none",
			host: &systemd,
			edit: func(p *ContainerParams) { p.SandboxConfig.Linux.CgroupParent = "" },
			want: func(r *Result) { r.HostConfig.CgroupParent = "" },
		},
		{
			name:     "systemd: not a slice",
			host:     &systemd,
			edit:     func(p *ContainerParams) { p.SandboxConfig.Linux.CgroupParent = "/kubepods/pod1" },
			errField: "sandbox_config.linux.cgroup_parent", errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestResourcesForUpdate(t *testing.T) {
	res, warnings, err := Resources(&runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20, OomScoreAdj: -500}, Host{MinOOMScoreAdj: 0})
	if err != nil {
		t.Fatal(err)
	}
	// No swap asked for: none, so that memory can later be raised past
	// twice its first value.
	if res.CPUShares != 512 || res.CPUQuota != 50000 || res.CPUPeriod != 100000 || res.Memory != 64<<20 || res.MemorySwap != 64<<20 {
		t.Errorf("resources = %+v", res)
	}
	res, _, err = Resources(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 128 << 20}, Host{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Memory != 64<<20 || res.MemorySwap != 128<<20 {
		t.Errorf("explicit swap: Memory = %d, MemorySwap = %d, want %d, %d", res.Memory, res.MemorySwap, 64<<20, 128<<20)
	}
	if len(warnings) != 1 {
		t.Errorf("warnings = %v, want the oom clamp", warnings)
	}
	if _, _, err := Resources(nil, Host{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Resources(nil) = %v, want InvalidArgument", err)
	}
	if _, _, err := Resources(&runtimeapi.LinuxContainerResources{CpuShares: -1}, Host{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("negative shares = %v, want InvalidArgument", err)
	}
}
