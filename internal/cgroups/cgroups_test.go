package cgroups

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := ParseProcCgroup([]byte("9:name=systemd:/docker/a\n4:memory:/docker/a\n2:cpu,cpuacct:/docker/a\n0::/docker/a\n"))
	want := map[string]string{"name=systemd": "/docker/a", "memory": "/docker/a", "cpu": "/docker/a", "cpuacct": "/docker/a", "": "/docker/a"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestReadV1(t *testing.T) {
	dir := t.TempDir()
	r := Reader{Root: filepath.Join(dir, "sys"), Proc: filepath.Join(dir, "proc")}
	write(t, dir, map[string]string{
		"proc/42/cgroup": "4:memory:/docker/a\n2:cpuacct:/docker/a\n8:pids:/docker/a\n0::/\n",
		"sys/memory/docker/a/memory.usage_in_bytes": "1000\n",
		"sys/memory/docker/a/memory.limit_in_bytes": "9223372036854771712\n",
		"sys/memory/docker/a/memory.stat":           "cache 5\ntotal_inactive_file 300\ntotal_rss 600\ntotal_pgfault 7\ntotal_pgmajfault 2\n",
		"sys/cpuacct/docker/a/cpuacct.usage":        "123456789\n",
		"sys/pids/docker/a/pids.current":            "3\n",
	})
	got, err := r.Read(42)
	if err != nil {
		t.Fatal(err)
	}
	want := Sample{CPUUsageNanos: 123456789, MemoryUsage: 1000, MemoryWorkingSet: 700, MemoryRSS: 600, PageFaults: 7, MajorPageFaults: 2, Pids: 3}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestReadV2(t *testing.T) {
	dir := t.TempDir()
	r := Reader{Root: filepath.Join(dir, "sys"), Proc: filepath.Join(dir, "proc")}
	write(t, dir, map[string]string{
		"proc/7/cgroup": "0::/system.slice/docker-a.scope\n",
		"sys/system.slice/docker-a.scope/memory.current": "2000\n",
		"sys/system.slice/docker-a.scope/memory.max":     "4096\n",
		"sys/system.slice/docker-a.scope/memory.stat":    "anon 900\ninactive_file 500\npgfault 11\npgmajfault 1\n",
		"sys/system.slice/docker-a.scope/cpu.stat":       "usage_usec 250\nuser_usec 200\n",
		"sys/system.slice/docker-a.scope/pids.current":   "2\n",
	})
	got, err := r.Read(7)
	if err != nil {
		t.Fatal(err)
	}
	want := Sample{CPUUsageNanos: 250000, MemoryUsage: 2000, MemoryWorkingSet: 1500, MemoryRSS: 900, PageFaults: 11, MajorPageFaults: 1, MemoryLimit: 4096, Pids: 2}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestReadSelf(t *testing.T) {
	// The test's own process has cgroups on any Linux host: the real
	// files parse.
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		t.Skip("no /sys/fs/cgroup")
	}
	s, err := Default.Read(os.Getpid())
	if err != nil {
		t.Fatalf("Read(self): %v", err)
	}
	if s.MemoryUsage == 0 {
		t.Errorf("own memory usage is 0: %+v", s)
	}
}
