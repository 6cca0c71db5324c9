package cri

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerStats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sbCfg := sandboxConfig("web")
	sb := e.runSandbox(t, sbCfg)
	cfg := containerConfig("app")
	cfg.Labels = map[string]string{"tier": "front"}
	running := e.createContainer(t, sb, sbCfg, cfg)
	e.startContainer(t, running)
	created := e.createContainer(t, sb, sbCfg, containerConfig("idle"))
	app, _ := e.docker.Container(running)
	e.svc.readCgroups = func(p int) (cgroups.Sample, error) {
		if p != app.State.Pid {
			return cgroups.Sample{MemoryUsage: 1 << 20, MemoryWorkingSet: 1 << 20}, nil
		}
		return cgroups.Sample{CPUUsageNanos: 5e9, MemoryUsage: 100 << 20, MemoryWorkingSet: 70 << 20, MemoryRSS: 50 << 20,
			PageFaults: 7, MajorPageFaults: 1, MemoryLimit: 1 << 30}, nil
	}
	r, err := e.svc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: running})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats
	if st.Attributes.Id != running || st.Attributes.Metadata.Name != "app" || st.Attributes.Labels["tier"] != "front" {
		t.Errorf("attributes = %v", st.Attributes)
	}
	if got := st.GetCpu().GetUsageCoreNanoSeconds().GetValue(); got != 5e9 {
		t.Errorf("cpu = %d, want 5e9", got)
	}
	m := st.GetMemory()
	got := []uint64{m.GetWorkingSetBytes().GetValue(), m.GetUsageBytes().GetValue(), m.GetRssBytes().GetValue(), m.GetAvailableBytes().GetValue(), m.GetPageFaults().GetValue(), m.GetMajorPageFaults().GetValue()}
	want := []uint64{70 << 20, 100 << 20, 50 << 20, 1<<30 - 70<<20, 7, 1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("memory [ws usage rss available faults majfaults] (-want +got):\n%s", d)
	}
	if st.WritableLayer == nil {
		t.Error("no writable layer usage")
	}

	r, err = e.svc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: created})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stats.Cpu != nil || r.Stats.Memory != nil {
		t.Errorf("a container that never ran has usage: %v", r.Stats)
	}

	list, err := e.svc.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
		Filter: &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"tier": "front"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Stats) != 1 || list.Stats[0].Attributes.Id != running {
		t.Errorf("ListContainerStats by label = %v", list.Stats)
	}
	list, err = e.svc.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
		Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: sb[:12]},
	})
	if err != nil || len(list.Stats) != 2 {
		t.Errorf("ListContainerStats by sandbox prefix = %d stats, %v; want 2", len(list.Stats), err)
	}

	ps, err := e.svc.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: sb})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Stats.Linux.Containers) != 2 || ps.Stats.Linux.Cpu.GetUsageCoreNanoSeconds().GetValue() != 5e9 {
		t.Errorf("pod stats = %v", ps.Stats.Linux)
	}
	if _, err := e.svc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "nope"}); err == nil {
		t.Error("stats of an unknown container succeeded")
	}
}

func TestParseNetDev(t *testing.T) {
	in := []byte(`Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2048      10    3    0    0     0          0         0     4096      20    4    0    0     0       0          0
`)
	got := parseNetDev(in)
	if len(got) != 2 {
		t.Fatalf("%d interfaces, want 2", len(got))
	}
	e := got[1]
	if e.Name != "eth0" || e.RxBytes.Value != 2048 || e.RxErrors.Value != 3 || e.TxBytes.Value != 4096 || e.TxErrors.Value != 4 {
		t.Errorf("eth0 = %v", e)
	}
}

func TestCapOutput(t *testing.T) {
	b := func(n int) []byte { return make([]byte, n) }
	for _, tc := range []struct{ out, err, budget, wantOut, wantErr int }{
		{10, 10, 100, 10, 10},
		{200, 0, 100, 100, 0},
		{0, 200, 100, 0, 100},
		{30, 200, 100, 30, 70},
		{200, 30, 100, 70, 30},
		{200, 200, 100, 50, 50},
	} {
		o, e := capOutput(b(tc.out), b(tc.err), tc.budget)
		if len(o) != tc.wantOut || len(e) != tc.wantErr {
			t.Errorf("capOutput(%d, %d, %d) = %d, %d; want %d, %d", tc.out, tc.err, tc.budget, len(o), len(e), tc.wantOut, tc.wantErr)
		}
	}
}

func TestBeingRemoved(t *testing.T) {
	for msg, want := range map[string]bool{
		"Error response from daemon: unrecognized image ID sha256:340c": true,
		"Error response from daemon: layer does not exist":              true,
		"Error response from daemon: conflict: image is in use":         false,
	} {
		if got := beingRemoved(errors.New(msg)); got != want {
			t.Errorf("beingRemoved(%q) = %v", msg, got)
		}
	}
}
