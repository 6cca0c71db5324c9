package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/naming"
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// metricLabels are the labels every metric carries, as cAdvisor names
// them; a descriptor's own labels follow.
var metricLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

type metricDesc struct {
	name, help string
	typ        runtimeapi.MetricType
	labels     []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// metricDescs are the metrics berth reports: cAdvisor's names, less the
// hugetlb, pressure, quota, reservation and ulimit ones it cannot read.
// Time is in whole seconds, as the names say (a CRI value is an integer).
var metricDescs = []metricDesc{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, []string{"cpu"}},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil},
	{"container_processes", "Number of processes running inside the container.", gauge, nil},
	{"container_threads", "Number of threads running inside the container.", gauge, nil},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, nil},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil},
	{"container_sockets", "Number of open sockets for the container.", gauge, nil},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, []string{"device"}},
	{"container_fs_inodes_total", "Number of Inodes.", gauge, []string{"device"}},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}},
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", counter, []string{"device", "major", "minor", "operation"}},
	{"container_last_seen", "Last time a container was seen by the exporter.", gauge, nil},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil},
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, nil},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", gauge, nil},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"}},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"}},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"}},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"}},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"}},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"}},
}

var metricTypes = func() map[string]runtimeapi.MetricType {
	m := make(map[string]runtimeapi.MetricType, len(metricDescs))
	for _, d := range metricDescs {
		m[d.name] = d.typ
	}
	return m
}()

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics reports.
func (s *Service) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDescs))
	for _, d := range metricDescs {
		keys := append(append([]string{}, metricLabels...), d.labels...)
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: keys})
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics reports the metrics of every ready sandbox: the
// pod's network, and each running container's cgroup, process and
// writable-layer counters.
func (s *Service) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	sandboxes, err := s.list(ctx, listQuery{typ: naming.TypeSandbox})
	if err != nil {
		return nil, err
	}
	ctrs, err := s.list(ctx, listQuery{typ: naming.TypeContainer, sized: true})
	if err != nil {
		return nil, err
	}
	bySandbox := map[string][]container.Summary{}
	for _, c := range ctrs {
		if c.State != container.StateRunning {
			continue
		}
		bySandbox[c.labels.SandboxID] = append(bySandbox[c.labels.SandboxID], c.Summary)
	}
	fs := s.writableFs(ctx)
	out := []*runtimeapi.PodSandboxMetrics{}
	for _, it := range sandboxes {
		if it.State != container.StateRunning {
			continue
		}
		sb, err := s.inspectOwned(ctx, it.ID, naming.TypeSandbox)
		if err != nil || sb.c.State == nil || !sb.c.State.Running {
			continue
		}
		meta, err := sb.labels.SandboxMetadata()
		if err != nil {
			continue
		}
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.c.ID}
		if sb.c.HostConfig == nil || !sb.c.HostConfig.NetworkMode.IsHost() {
			b := s.newMetrics([]string{"POD", sb.c.ID, s.pauseImage, strings.TrimPrefix(sb.c.Name, "/"), meta.GetNamespace(), meta.GetName()})
			if dev, err := os.ReadFile(filepath.Join(s.cgroups.Proc, strconv.Itoa(sb.c.State.Pid), "net", "dev")); err == nil {
				b.network(dev)
			}
			pm.Metrics = b.out
		}
		for _, c := range bySandbox[sb.c.ID] {
			cm, err := s.containerMetrics(ctx, c, meta, fs)
			if err != nil {
				// A container gone meanwhile is simply not reported.
				s.log.DebugContext(ctx, "container metrics", "container", c.ID, "error", err)
				continue
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
		}
		out = append(out, pm)
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// fsStats is the filesystem holding containers' writable layers.
type fsStats struct {
	device                    string
	limit, inodes, inodesFree uint64
}

func (s *Service) writableFs(ctx context.Context) fsStats {
	fs := fsStats{device: s.imageFsMount(ctx)}
	var st syscall.Statfs_t
	if fs.device != "" && syscall.Statfs(fs.device, &st) == nil {
		fs.limit = st.Blocks * uint64(st.Bsize)
		fs.inodes, fs.inodesFree = st.Files, st.Ffree
	}
	return fs
}

func (s *Service) containerMetrics(ctx context.Context, c container.Summary, sbMeta *runtimeapi.PodSandboxMetadata, fs fsStats) (*runtimeapi.ContainerMetrics, error) {
	ctr, err := s.inspectOwned(ctx, c.ID, naming.TypeContainer)
	if err != nil {
		return nil, err
	}
	st := ctr.c.State
	if st == nil || !st.Running || st.Pid == 0 {
		return nil, fmt.Errorf("container %s: not running", c.ID)
	}
	meta, err := ctr.labels.ContainerMetadata()
	if err != nil {
		return nil, err
	}
	sample, err := s.readCgroups(st.Pid)
	if err != nil {
		return nil, err
	}
	d, err := s.cgroups.ReadDetail(st.Pid)
	if err != nil {
		return nil, err
	}
	image := ctr.labels.Image
	if image == "" && ctr.c.Config != nil {
		image = ctr.c.Config.Image
	}
	b := s.newMetrics([]string{meta.GetName(), ctr.c.ID, image, strings.TrimPrefix(ctr.c.Name, "/"), sbMeta.GetNamespace(), sbMeta.GetName()})
	b.add("container_cpu_usage_seconds_total", sample.CPUUsageNanos/1e9, "total")
	b.add("container_cpu_user_seconds_total", d.CPUUserNanos/1e9)
	b.add("container_cpu_system_seconds_total", d.CPUSystemNanos/1e9)
	b.add("container_cpu_cfs_periods_total", d.CFSPeriods)
	b.add("container_cpu_cfs_throttled_periods_total", d.CFSThrottled)
	b.add("container_cpu_cfs_throttled_seconds_total", d.CFSThrottledNanos/1e9)

	b.add("container_memory_usage_bytes", sample.MemoryUsage)
	b.add("container_memory_working_set_bytes", sample.MemoryWorkingSet)
	b.add("container_memory_rss", sample.MemoryRSS)
	b.add("container_memory_cache", d.MemoryCache)
	b.add("container_memory_mapped_file", d.MemoryMappedFile)
	b.add("container_memory_swap", d.MemorySwap)
	b.add("container_memory_max_usage_bytes", d.MemoryMaxUsage)
	b.add("container_memory_failcnt", d.MemoryFailcnt)
	b.add("container_memory_kernel_usage", d.MemoryKernel)
	// As cAdvisor: pgfault counts major faults too. The cgroup counts its
	// whole hierarchy; a container has no children, so both scopes agree.
	for _, scope := range []string{"container", "hierarchy"} {
		b.add("container_memory_failures_total", sample.PageFaults, "pgfault", scope)
		b.add("container_memory_failures_total", sample.MajorPageFaults, "pgmajfault", scope)
	}
	b.add("container_oom_events_total", d.OOMKills)

	p := s.cgroups.CountProcesses(d.Procs)
	b.add("container_processes", p.Processes)
	b.add("container_threads", p.Threads)
	b.add("container_threads_max", d.ThreadsMax)
	b.add("container_file_descriptors", p.FDs)
	b.add("container_sockets", p.Sockets)

	b.add("container_fs_usage_bytes", uint64(max(c.SizeRw, 0)), fs.device)
	b.add("container_fs_limit_bytes", fs.limit, fs.device)
	b.add("container_fs_inodes_free", fs.inodesFree, fs.device)
	b.add("container_fs_inodes_total", fs.inodes, fs.device)
	for _, io := range d.Blkio {
		dev := blockDevice(io.Major, io.Minor)
		b.add("container_fs_reads_bytes_total", io.ReadBytes, dev)
		b.add("container_fs_reads_total", io.Reads, dev)
		b.add("container_fs_writes_bytes_total", io.WriteBytes, dev)
		b.add("container_fs_writes_total", io.Writes, dev)
		maj, mnr := strconv.FormatUint(io.Major, 10), strconv.FormatUint(io.Minor, 10)
		b.add("container_blkio_device_usage_total", io.ReadBytes, dev, maj, mnr, "Read")
		b.add("container_blkio_device_usage_total", io.WriteBytes, dev, maj, mnr, "Write")
	}

	b.add("container_last_seen", uint64(s.now().Unix()))
	if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Unix() > 0 {
		b.add("container_start_time_seconds", uint64(t.Unix()))
	} else {
		b.add("container_start_time_seconds", 0)
	}
	b.add("container_spec_cpu_period", d.CPUPeriod)
	b.add("container_spec_cpu_shares", d.CPUShares)
	b.add("container_spec_memory_limit_bytes", sample.MemoryLimit)
	b.add("container_spec_memory_swap_limit_bytes", d.MemorySwapLimit)
	return &runtimeapi.ContainerMetrics{ContainerId: ctr.c.ID, Metrics: b.out}, nil
}

// blockDevice names a block device as cAdvisor does (/dev/sda), or by
// its numbers when sysfs does not say.
func blockDevice(major, minor uint64) string {
	num := strconv.FormatUint(major, 10) + ":" + strconv.FormatUint(minor, 10)
	if l, err := os.Readlink("/sys/dev/block/" + num); err == nil {
		return "/dev/" + filepath.Base(l)
	}
	return num
}

// metricBuilder collects metrics sharing the base label values.
type metricBuilder struct {
	base []string
	ts   int64
	out  []*runtimeapi.Metric
}

func (s *Service) newMetrics(base []string) *metricBuilder {
	return &metricBuilder{base: base, ts: s.now().UnixNano()}
}

func (b *metricBuilder) add(name string, v uint64, labels ...string) {
	b.out = append(b.out, &runtimeapi.Metric{
		Name:        name,
		Timestamp:   b.ts,
		MetricType:  metricTypes[name],
		LabelValues: append(append([]string{}, b.base...), labels...),
		Value:       &runtimeapi.UInt64Value{Value: v},
	})
}

// network adds the pod's per-interface counters from /proc/<pid>/net/dev
// (loopback excluded).
func (b *metricBuilder) network(netDev []byte) {
	names := []string{
		"container_network_receive_bytes_total", "container_network_receive_packets_total",
		"container_network_receive_errors_total", "container_network_receive_packets_dropped_total",
	}
	tx := []string{
		"container_network_transmit_bytes_total", "container_network_transmit_packets_total",
		"container_network_transmit_errors_total", "container_network_transmit_packets_dropped_total",
	}
	for i, line := range strings.Split(string(netDev), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if i < 2 || !ok || name == "lo" || len(f) < 12 {
			continue
		}
		// rx: bytes packets errs drop ...; tx starts at field 8.
		for j := range 4 {
			rv, _ := strconv.ParseUint(f[j], 10, 64)
			tv, _ := strconv.ParseUint(f[8+j], 10, 64)
			b.add(names[j], rv, name)
			b.add(tx[j], tv, name)
		}
	}
}
