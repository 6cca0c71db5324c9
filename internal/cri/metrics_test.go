package cri

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/berth-project/berth/internal/cgroups"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// optionalMetrics need blkio accounting the fake tree may not have.
var optionalMetrics = map[string]bool{
	"container_blkio_device_usage_total": true,
	"container_fs_reads_bytes_total":     true,
	"container_fs_reads_total":           true,
	"container_fs_writes_bytes_total":    true,
	"container_fs_writes_total":          true,
}

func TestListPodSandboxMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	running := e.createContainer(t, sb, sbCfg, containerConfig("app"))
	e.startContainer(t, running)
	e.createContainer(t, sb, sbCfg, containerConfig("idle"))
	app, _ := e.docker.Container(running)
	pause, _ := e.docker.Container(sb)

	dir := t.TempDir()
	pid := strconv.Itoa(app.State.Pid)
	files := map[string]string{
		"proc/" + pid + "/cgroup":                "4:memory:/docker/a\n2:cpuacct:/docker/a\n1:cpu:/docker/a\n0::/\n",
		"sys/memory/docker/a/memory.stat":        "total_cache 50\ntotal_mapped_file 20\n",
		"sys/memory/docker/a/memory.oom_control": "oom_kill 1\n",
		"sys/memory/docker/a/cgroup.procs":       pid + "\n",
		"sys/cpuacct/docker/a/cpuacct.stat":      "user 300\nsystem 100\n",
		"sys/cpu/docker/a/cpu.shares":            "2\n",
		"proc/" + pid + "/task/" + pid + "/stat": "",
		"proc/" + strconv.Itoa(pause.State.Pid) + "/net/dev": "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n" +
			"    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 2048 10 3 1 0 0 0 0 4096 20 4 2 0 0 0 0\n",
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.svc.cgroups = cgroups.Reader{Root: filepath.Join(dir, "sys"), Proc: filepath.Join(dir, "proc")}
	e.svc.readCgroups = func(int) (cgroups.Sample, error) {
		return cgroups.Sample{CPUUsageNanos: 5e9, MemoryUsage: 100 << 20, MemoryWorkingSet: 70 << 20, PageFaults: 7, MajorPageFaults: 1}, nil
	}

	descs, err := e.svc.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PodMetrics) != 1 || res.PodMetrics[0].PodSandboxId != sb {
		t.Fatalf("pod metrics = %v", res.PodMetrics)
	}
	pm := res.PodMetrics[0]
	if len(pm.ContainerMetrics) != 1 || pm.ContainerMetrics[0].ContainerId != running {
		t.Fatalf("container metrics for %d containers, want only the running one", len(pm.ContainerMetrics))
	}
	all := append(append([]*runtimeapi.Metric{}, pm.Metrics...), pm.ContainerMetrics[0].Metrics...)
	byName := map[string][]*runtimeapi.Metric{}
	for _, m := range all {
		byName[m.Name] = append(byName[m.Name], m)
	}
	for _, d := range descs.Descriptors {
		if d.Help == "" || len(d.LabelKeys) == 0 {
			t.Errorf("descriptor %s has no help or labels", d.Name)
		}
		ms := byName[d.Name]
		if len(ms) == 0 && !optionalMetrics[d.Name] {
			t.Errorf("no %s metric", d.Name)
		}
		for _, m := range ms {
			if len(m.LabelValues) != len(d.LabelKeys) {
				t.Errorf("%s: %d label values for %d keys", d.Name, len(m.LabelValues), len(d.LabelKeys))
			}
		}
		delete(byName, d.Name)
	}
	for name := range byName {
		t.Errorf("metric %s has no descriptor", name)
	}

	value := func(name string, labels ...string) uint64 {
		t.Helper()
		for _, m := range all {
			if m.Name == name && len(m.LabelValues) >= len(labels) && slices.Equal(m.LabelValues[len(m.LabelValues)-len(labels):], labels) {
				return m.Value.GetValue()
			}
		}
		t.Errorf("no %s %v", name, labels)
		return 0
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   uint64
	}{
		{"container_cpu_usage_seconds_total", []string{"total"}, 5},
		{"container_cpu_user_seconds_total", nil, 3},
		{"container_cpu_system_seconds_total", nil, 1},
		{"container_memory_working_set_bytes", nil, 70 << 20},
		{"container_memory_cache", nil, 50},
		{"container_memory_failures_total", []string{"pgmajfault", "container"}, 1},
		{"container_oom_events_total", nil, 1},
		{"container_spec_cpu_shares", nil, 2},
		{"container_processes", nil, 1},
		{"container_threads", nil, 1},
		{"container_last_seen", nil, uint64(testNow.Unix())},
		{"container_network_receive_bytes_total", []string{"eth0"}, 2048},
		{"container_network_transmit_packets_dropped_total", []string{"eth0"}, 2},
	} {
		if got := value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %d, want %d", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, m := range pm.Metrics {
		if m.LabelValues[len(m.LabelValues)-1] == "lo" {
			t.Errorf("loopback reported: %v", m)
		}
	}
	base := pm.ContainerMetrics[0].Metrics[0].LabelValues
	if base[0] != "app" || base[1] != running || base[4] != "default" || base[5] != "web" {
		t.Errorf("container labels = %v", base)
	}
}
