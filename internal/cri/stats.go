package cri

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/naming"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsParallel bounds the Docker stats calls a list makes at once: each
// is a round trip, and the kubelet lists every container every few seconds.
const statsParallel = 8

// ContainerStats reports one container's resource usage.
func (s *Service) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.inspectOwnedWith(ctx, req.GetContainerId(), naming.TypeContainer, client.ContainerInspectOptions{Size: true})
	if err != nil {
		return nil, err
	}
	meta, err := c.labels.ContainerMetadata()
	if err != nil {
		return nil, err
	}
	st, sampled, err := s.sample(c.c.ID, c.c.State)
	if err != nil {
		return nil, err
	}
	var sizeRw int64
	if c.c.SizeRw != nil {
		sizeRw = *c.c.SizeRw
	}
	out := s.criContainerStats(ctx, c.c.ID, meta, c.labels, st, sampled, sizeRw)
	return &runtimeapi.ContainerStatsResponse{Stats: out}, nil
}

// ListContainerStats reports the usage of the containers a filter selects.
func (s *Service) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	all, err := s.listContainerStats(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	stats := make([]*runtimeapi.ContainerStats, 0, len(all))
	for _, st := range all {
		stats = append(stats, st.stats)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: stats}, nil
}

// sandboxedStats is a container's stats with the sandbox it belongs to.
type sandboxedStats struct {
	sandboxID string
	stats     *runtimeapi.ContainerStats
}

// listContainerStats samples the containers f selects, from one (sized)
// Docker list.
func (s *Service) listContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]sandboxedStats, error) {
	// Docker filters by a full sandbox ID; a prefix is matched below.
	q := listQuery{typ: naming.TypeContainer, idPrefix: f.GetId(), selector: f.GetLabelSelector(), sized: true}
	if len(f.GetPodSandboxId()) == 64 {
		q.sandboxID = f.GetPodSandboxId()
	}
	items, err := s.list(ctx, q)
	if err != nil {
		return nil, err
	}
	type job struct {
		it   container.Summary
		d    naming.Decoded
		meta *runtimeapi.ContainerMetadata
	}
	var jobs []job
	for _, it := range items {
		if !strings.HasPrefix(it.labels.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		meta, err := it.labels.ContainerMetadata()
		if err != nil {
			continue
		}
		jobs = append(jobs, job{it.Summary, it.labels, meta})
	}
	out := make([]*runtimeapi.ContainerStats, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, statsParallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, sampled, err := s.containerStats(ctx, j.it.ID, j.it.State == container.StateRunning)
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = s.criContainerStats(ctx, j.it.ID, j.meta, j.d, st, sampled, j.it.SizeRw)
		}()
	}
	wg.Wait()
	stats := make([]sandboxedStats, 0, len(out))
	for i, st := range out {
		if errs[i] != nil {
			// A container removed meanwhile is simply not listed.
			s.log.DebugContext(ctx, "container stats", "container", jobs[i].it.ID, "error", errs[i])
			continue
		}
		stats = append(stats, sandboxedStats{jobs[i].d.SandboxID, st})
	}
	return stats, nil
}

// containerStats samples a listed container's cgroups; a list carries no
// pid, so a running one is inspected for it.
func (s *Service) containerStats(ctx context.Context, id string, running bool) (cgroups.Sample, bool, error) {
	if !running {
		return cgroups.Sample{}, false, nil
	}
	res, err := s.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return cgroups.Sample{}, false, fmt.Errorf("stats of container %s: %w", id, err)
	}
	return s.sample(id, res.Container.State)
}

// sample reads the cgroups of a container in state st; one that does not
// run has none, and no sample (ok false).
func (s *Service) sample(id string, st *container.State) (sample cgroups.Sample, ok bool, err error) {
	if st == nil || !st.Running || st.Pid == 0 {
		return cgroups.Sample{}, false, nil
	}
	sample, err = s.readCgroups(st.Pid)
	if err != nil {
		return cgroups.Sample{}, false, fmt.Errorf("stats of container %s: %w", id, err)
	}
	return sample, true, nil
}

func (s *Service) criContainerStats(ctx context.Context, id string, meta *runtimeapi.ContainerMetadata, d naming.Decoded, st cgroups.Sample, sampled bool, sizeRw int64) *runtimeapi.ContainerStats {
	now := s.now().UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: meta, Labels: d.Labels, Annotations: d.Annotations},
		WritableLayer: &runtimeapi.FilesystemUsage{
			Timestamp: now,
			FsId:      &runtimeapi.FilesystemIdentifier{Mountpoint: s.imageFsMount(ctx)},
			UsedBytes: &runtimeapi.UInt64Value{Value: uint64(max(sizeRw, 0))},
		},
	}
	if sampled {
		out.Cpu, out.Memory = cpuMemory(st, now)
	}
	return out
}

// cpuMemory turns a cgroup sample into CRI CPU and memory usage.
func cpuMemory(st cgroups.Sample, ts int64) (*runtimeapi.CpuUsage, *runtimeapi.MemoryUsage) {
	cpu := &runtimeapi.CpuUsage{
		Timestamp:            ts,
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsageNanos},
	}
	mem := &runtimeapi.MemoryUsage{
		Timestamp:       ts,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.MemoryWorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: st.MemoryRSS},
		PageFaults:      &runtimeapi.UInt64Value{Value: st.PageFaults},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MajorPageFaults},
	}
	// Available memory is only meaningful under a limit.
	if st.MemoryLimit > st.MemoryWorkingSet {
		mem.AvailableBytes = &runtimeapi.UInt64Value{Value: st.MemoryLimit - st.MemoryWorkingSet}
	}
	return cpu, mem
}

// imageFsMount is where Docker keeps container layers.
func (s *Service) imageFsMount(ctx context.Context) string {
	s.mu.Lock()
	m := s.fsMount
	s.mu.Unlock()
	if m != "" {
		return m
	}
	info, err := s.docker.Info(ctx, client.InfoOptions{})
	if err != nil {
		return ""
	}
	m = info.Info.DockerRootDir
	if info.Info.Driver != "" {
		m += "/" + info.Info.Driver
	}
	s.mu.Lock()
	s.fsMount = m
	s.mu.Unlock()
	return m
}

// PodSandboxStats reports a sandbox's usage: its containers', and its
// network's from the pause process's view of its namespace.
func (s *Service) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.inspectOwned(ctx, req.GetPodSandboxId(), naming.TypeSandbox)
	if err != nil {
		return nil, err
	}
	ctrs, err := s.listContainerStats(ctx, &runtimeapi.ContainerStatsFilter{PodSandboxId: sb.c.ID})
	if err != nil {
		return nil, err
	}
	st, err := s.podStats(sb, ctrs)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the usage of the sandboxes a filter selects.
// The containers of all of them come from one Docker list: a sized list
// is costly, and the kubelet asks every few seconds.
func (s *Service) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	items, err := s.list(ctx, listQuery{typ: naming.TypeSandbox, idPrefix: f.GetId(), selector: f.GetLabelSelector()})
	if err != nil {
		return nil, err
	}
	all, err := s.listContainerStats(ctx, nil)
	if err != nil {
		return nil, err
	}
	bySandbox := map[string][]sandboxedStats{}
	for _, st := range all {
		bySandbox[st.sandboxID] = append(bySandbox[st.sandboxID], st)
	}
	out := []*runtimeapi.PodSandboxStats{}
	for _, it := range items {
		sb, err := s.inspectOwned(ctx, it.ID, naming.TypeSandbox)
		if err != nil {
			continue
		}
		st, err := s.podStats(sb, bySandbox[sb.c.ID])
		if err != nil {
			s.log.DebugContext(ctx, "sandbox stats", "sandbox", it.ID, "error", err)
			continue
		}
		out = append(out, st)
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

func (s *Service) podStats(sb inspected, ctrStats []sandboxedStats) (*runtimeapi.PodSandboxStats, error) {
	meta, err := sb.labels.SandboxMetadata()
	if err != nil {
		return nil, err
	}
	ctrs := make([]*runtimeapi.ContainerStats, 0, len(ctrStats))
	for _, c := range ctrStats {
		ctrs = append(ctrs, c.stats)
	}
	now := s.now().UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{Containers: ctrs}
	running := sb.c.State != nil && sb.c.State.Running
	pause, sampled, err := s.sample(sb.c.ID, sb.c.State)
	if err != nil {
		return nil, err
	}
	var cpuTotal, wsTotal, usageTotal uint64
	var procs uint64
	if sampled {
		cpuTotal, wsTotal, usageTotal = pause.CPUUsageNanos, pause.MemoryWorkingSet, pause.MemoryUsage
		procs = pause.Pids
	}
	for _, c := range ctrs {
		if c.Cpu != nil {
			cpuTotal += c.Cpu.GetUsageCoreNanoSeconds().GetValue()
			sampled = true
		}
		if c.Memory != nil {
			wsTotal += c.Memory.GetWorkingSetBytes().GetValue()
			usageTotal += c.Memory.GetUsageBytes().GetValue()
		}
	}
	if sampled {
		linux.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpuTotal}}
		linux.Memory = &runtimeapi.MemoryUsage{
			Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: wsTotal}, UsageBytes: &runtimeapi.UInt64Value{Value: usageTotal},
		}
		linux.Process = &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: &runtimeapi.UInt64Value{Value: procs}}
	}
	if running && sb.c.State.Pid > 0 && (sb.c.HostConfig == nil || !sb.c.HostConfig.NetworkMode.IsHost()) {
		if n, err := netStats(sb.c.State.Pid, now); err == nil {
			linux.Network = n
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.c.ID, Metadata: meta, Labels: sb.labels.Labels, Annotations: sb.labels.Annotations},
		Linux:      linux,
	}, nil
}

// netStats reads the pod's interfaces from /proc/<pid>/net/dev, which shows
// the network namespace of that process: no need to enter it.
func netStats(pid int, now int64) (*runtimeapi.NetworkUsage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, err
	}
	ifaces := parseNetDev(b)
	n := &runtimeapi.NetworkUsage{Timestamp: now}
	for _, i := range ifaces {
		if i.Name == "lo" {
			continue
		}
		i.Name = strings.TrimSpace(i.Name)
		if i.Name == "eth0" {
			n.DefaultInterface = i
		} else {
			n.Interfaces = append(n.Interfaces, i)
		}
	}
	return n, nil
}

// parseNetDev parses /proc/net/dev: a two-line header, then per interface
// "name: rx_bytes rx_packets rx_errs rx_drop ... tx_bytes tx_packets tx_errs tx_drop ...".
func parseNetDev(b []byte) []*runtimeapi.NetworkInterfaceUsage {
	var out []*runtimeapi.NetworkInterfaceUsage
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			continue
		}
		num := func(i int) *runtimeapi.UInt64Value {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			return &runtimeapi.UInt64Value{Value: v}
		}
		out = append(out, &runtimeapi.NetworkInterfaceUsage{
			Name: strings.TrimSpace(name), RxBytes: num(0), RxErrors: num(2), TxBytes: num(8), TxErrors: num(10),
		})
	}
	return out
}
