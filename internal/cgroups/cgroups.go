// Package cgroups reads a process's resource usage from its cgroups.
//
// Docker's own stats endpoint cannot serve every container berth makes:
// Engine 20.10 fails it ("invalid id") for a container that shares the
// network of a pause container created with networking disabled, since it
// also collects network stats from a Docker network sandbox there is none
// of. The cgroup files are the source Docker reads anyway, and reading them
// directly costs no daemon round trip. Paths come from /proc/<pid>/cgroup,
// so the cgroupfs and systemd drivers and cgroup v1 and v2 all work.
package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sample is one reading of a cgroup's usage.
type Sample struct {
	CPUUsageNanos    uint64
	MemoryUsage      uint64
	MemoryWorkingSet uint64
	MemoryRSS        uint64
	PageFaults       uint64
	MajorPageFaults  uint64
	// MemoryLimit is 0 when the cgroup has none.
	MemoryLimit uint64
	Pids        uint64
}

// Reader reads cgroup files below Root (normally /sys/fs/cgroup) and
// process files below Proc (normally /proc); tests point them elsewhere.
type Reader struct {
	Root string
	Proc string
}

// Default reads the host's cgroups.
var Default = Reader{Root: "/sys/fs/cgroup", Proc: "/proc"}

// Read samples the cgroups of process pid.
func (r Reader) Read(pid int) (Sample, error) {
	return dispatch(r, pid, r.readV1, r.readV2)
}

// dispatch finds the cgroups of process pid and reads them with v1 (by
// controller) when the memory controller is a v1 hierarchy, else with v2
// (the unified path).
func dispatch[T any](r Reader, pid int, v1 func(map[string]string) (T, error), v2 func(string) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile(filepath.Join(r.Proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return zero, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	paths := ParseProcCgroup(b)
	if _, ok := paths["memory"]; ok {
		return v1(paths)
	}
	if p, ok := paths[""]; ok {
		return v2(p)
	}
	return zero, fmt.Errorf("cgroups of pid %d: no memory or unified hierarchy", pid)
}

// ParseProcCgroup maps each v1 controller (and "" for the v2 unified
// hierarchy) to the process's path in it.
func ParseProcCgroup(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

func (r Reader) readV1(paths map[string]string) (Sample, error) {
	var s Sample
	var errs []error
	mem := filepath.Join(r.Root, "memory", paths["memory"])
	s.MemoryUsage, errs = readUint(filepath.Join(mem, "memory.usage_in_bytes"), errs)
	limit, errs := readUint(filepath.Join(mem, "memory.limit_in_bytes"), errs)
	// v1 reports "no limit" as a huge page-aligned number.
	if limit < 1<<62 {
		s.MemoryLimit = limit
	}
	stat, err := readKV(filepath.Join(mem, "memory.stat"))
	if err != nil {
		errs = append(errs, err)
	}
	s.MemoryWorkingSet = sub(s.MemoryUsage, stat["total_inactive_file"])
	s.MemoryRSS = stat["total_rss"]
	s.PageFaults = stat["total_pgfault"]
	s.MajorPageFaults = stat["total_pgmajfault"]
	if p, ok := paths["cpuacct"]; ok {
		s.CPUUsageNanos, errs = readUint(filepath.Join(r.Root, "cpuacct", p, "cpuacct.usage"), errs)
	}
	if p, ok := paths["pids"]; ok {
		// The root cgroup has no pids.current.
		s.Pids, _ = readUint(filepath.Join(r.Root, "pids", p, "pids.current"), nil)
	}
	return s, errors.Join(errs...)
}

func (r Reader) readV2(path string) (Sample, error) {
	var s Sample
	var errs []error
	dir := filepath.Join(r.Root, path)
	s.MemoryUsage, errs = readUint(filepath.Join(dir, "memory.current"), errs)
	if b, err := os.ReadFile(filepath.Join(dir, "memory.max")); err == nil && strings.TrimSpace(string(b)) != "max" {
		s.MemoryLimit, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	stat, err := readKV(filepath.Join(dir, "memory.stat"))
	if err != nil {
		errs = append(errs, err)
	}
	s.MemoryWorkingSet = sub(s.MemoryUsage, stat["inactive_file"])
	s.MemoryRSS = stat["anon"]
	s.PageFaults = stat["pgfault"]
	s.MajorPageFaults = stat["pgmajfault"]
	cpu, err := readKV(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		errs = append(errs, err)
	}
	s.CPUUsageNanos = cpu["usage_usec"] * 1000
	s.Pids, _ = readUint(filepath.Join(dir, "pids.current"), nil)
	return s, errors.Join(errs...)
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readUint(path string, errs []error) (uint64, []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, append(errs, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return v, errs
}

// readKV reads a "key value" per line file such as memory.stat.
func readKV(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}
