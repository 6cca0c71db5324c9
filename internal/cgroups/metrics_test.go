package cgroups

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadDetailV1(t *testing.T) {
	dir := t.TempDir()
	r := Reader{Root: filepath.Join(dir, "sys"), Proc: filepath.Join(dir, "proc")}
	write(t, dir, map[string]string{
		"proc/42/cgroup":                                     "8:pids:/docker/a\n7:blkio:/docker/a\n4:memory:/docker/a\n2:cpuacct:/docker/a\n1:cpu:/docker/a\n0::/\n",
		"sys/memory/docker/a/memory.stat":                    "cache 1\ntotal_cache 50\ntotal_mapped_file 20\ntotal_swap 4\n",
		"sys/memory/docker/a/memory.max_usage_in_bytes":      "9000\n",
		"sys/memory/docker/a/memory.failcnt":                 "3\n",
		"sys/memory/docker/a/memory.kmem.usage_in_bytes":     "700\n",
		"sys/memory/docker/a/memory.memsw.limit_in_bytes":    "9223372036854771712\n",
		"sys/memory/docker/a/memory.oom_control":             "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"sys/memory/docker/a/cgroup.procs":                   "42\n43\n",
		"sys/cpuacct/docker/a/cpuacct.stat":                  "user 150\nsystem 25\n",
		"sys/cpu/docker/a/cpu.stat":                          "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
		"sys/cpu/docker/a/cpu.cfs_period_us":                 "100000\n",
		"sys/cpu/docker/a/cpu.shares":                        "1024\n",
		"sys/pids/docker/a/pids.max":                         "max\n",
		"sys/blkio/docker/a/blkio.throttle.io_service_bytes": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
		"sys/blkio/docker/a/blkio.throttle.io_serviced":      "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
	})
	got, err := r.ReadDetail(42)
	if err != nil {
		t.Fatal(err)
	}
	want := Detail{
		CPUUserNanos: 1_500_000_000, CPUSystemNanos: 250_000_000, CFSPeriods: 10, CFSThrottled: 4, CFSThrottledNanos: 5000,
		CPUPeriod: 100000, CPUShares: 1024,
		MemoryCache: 50, MemoryMappedFile: 20, MemorySwap: 4, MemoryMaxUsage: 9000, MemoryFailcnt: 3, MemoryKernel: 700,
		OOMKills: 2, Procs: []int{42, 43},
		Blkio: []BlkioDevice{{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestReadDetailV2(t *testing.T) {
	dir := t.TempDir()
	r := Reader{Root: filepath.Join(dir, "sys"), Proc: filepath.Join(dir, "proc")}
	cg := "sys/system.slice/docker-a.scope/"
	write(t, dir, map[string]string{
		"proc/7/cgroup":            "0::/system.slice/docker-a.scope\n",
		cg + "memory.stat":         "anon 900\nfile 300\nfile_mapped 30\nkernel 64\n",
		cg + "memory.swap.current": "8\n",
		cg + "memory.peak":         "5000\n",
		cg + "memory.swap.max":     "max\n",
		cg + "memory.events":       "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n",
		cg + "cgroup.procs":        "7\n",
		cg + "cpu.stat":            "usage_usec 250\nuser_usec 200\nsystem_usec 50\nnr_periods 5\nnr_throttled 1\nthrottled_usec 3\n",
		cg + "cpu.max":             "50000 100000\n",
		cg + "cpu.weight":          "100\n",
		cg + "pids.max":            "512\n",
		cg + "io.stat":             "259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
	})
	got, err := r.ReadDetail(7)
	if err != nil {
		t.Fatal(err)
	}
	want := Detail{
		CPUUserNanos: 200_000, CPUSystemNanos: 50_000, CFSPeriods: 5, CFSThrottled: 1, CFSThrottledNanos: 3000,
		CPUPeriod: 100000, CPUShares: 2597,
		MemoryCache: 300, MemoryMappedFile: 30, MemorySwap: 8, MemoryMaxUsage: 5000, MemoryFailcnt: 6, MemoryKernel: 64,
		OOMKills: 1, ThreadsMax: 512, Procs: []int{7},
		Blkio: []BlkioDevice{{Major: 259, Minor: 0, ReadBytes: 10, WriteBytes: 20, Reads: 1, Writes: 2}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestParseCPUMax(t *testing.T) {
	for in, want := range map[string][2]uint64{
		"max 100000\n":   {0, 100000},
		"50000 100000\n": {50000, 100000},
		"":               {0, 0},
	} {
		q, p := ParseCPUMax([]byte(in))
		if q != want[0] || p != want[1] {
			t.Errorf("ParseCPUMax(%q) = %d, %d; want %v", in, q, p, want)
		}
	}
}

func TestWeightToShares(t *testing.T) {
	for w, want := range map[uint64]uint64{0: 0, 1: 2, 100: 2597, 10000: 262144} {
		if got := WeightToShares(w); got != want {
			t.Errorf("WeightToShares(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestParseBlkioV1(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bytes, ios string
		want       []BlkioDevice
	}{
		{"empty", "", "", nil},
		{"total only", "Total 0\n", "Total 0\n", nil},
		{"two devices", "8:0 Read 1\n8:16 Write 2\n", "8:16 Write 3\n8:0 Read 4\n",
			[]BlkioDevice{{Major: 8, ReadBytes: 1, Reads: 4}, {Major: 8, Minor: 16, WriteBytes: 2, Writes: 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, ParseBlkioV1([]byte(tc.bytes), []byte(tc.ios))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCountProcessesSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc")
	}
	p := Default.CountProcesses([]int{os.Getpid(), -1})
	if p.Processes != 1 || p.Threads == 0 || p.FDs == 0 {
		t.Errorf("CountProcesses(self) = %+v", p)
	}
}
