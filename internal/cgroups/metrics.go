package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Detail is what the CRI metrics RPCs report beyond a Sample: the
// counters cAdvisor exports as container_* metrics. A value the host
// cannot tell (a file the kernel lacks) is 0.
type Detail struct {
	CPUUserNanos      uint64
	CPUSystemNanos    uint64
	CFSPeriods        uint64
	CFSThrottled      uint64
	CFSThrottledNanos uint64
	// CPUPeriod is the CFS period in microseconds; CPUShares the v1
	// shares (on v2 converted from cpu.weight as cAdvisor does).
	CPUPeriod uint64
	CPUShares uint64

	MemoryCache      uint64
	MemoryMappedFile uint64
	MemorySwap       uint64
	MemoryMaxUsage   uint64
	MemoryFailcnt    uint64
	MemoryKernel     uint64
	// MemorySwapLimit is 0 when the cgroup has none.
	MemorySwapLimit uint64
	OOMKills        uint64

	// ThreadsMax is the pids limit, 0 when the cgroup has none.
	ThreadsMax uint64
	// Procs are the (host) process ids in the cgroup.
	Procs []int
	Blkio []BlkioDevice
}

// BlkioDevice is one block device's I/O by the cgroup.
type BlkioDevice struct {
	Major, Minor          uint64
	ReadBytes, WriteBytes uint64
	Reads, Writes         uint64
}

// userHZ is the unit of cpuacct.stat: USER_HZ is 100 on every Linux
// architecture Docker runs on.
const userHZ = 100

// noLimitV1 is the smallest value cgroup v1 uses to mean "unlimited"
// (it reports a huge page-aligned number).
const noLimitV1 = 1 << 62

// ReadDetail reads the metric counters of the cgroups of process pid.
func (r Reader) ReadDetail(pid int) (Detail, error) {
	return dispatch(r, pid, r.detailV1, r.detailV2)
}

func (r Reader) detailV1(paths map[string]string) (Detail, error) {
	var d Detail
	var errs []error
	mem := filepath.Join(r.Root, "memory", paths["memory"])
	stat, err := readKV(filepath.Join(mem, "memory.stat"))
	if err != nil {
		errs = append(errs, err)
	}
	d.MemoryCache = stat["total_cache"]
	d.MemoryMappedFile = stat["total_mapped_file"]
	d.MemorySwap = stat["total_swap"]
	d.MemoryMaxUsage = optUint(filepath.Join(mem, "memory.max_usage_in_bytes"))
	d.MemoryFailcnt = optUint(filepath.Join(mem, "memory.failcnt"))
	d.MemoryKernel = optUint(filepath.Join(mem, "memory.kmem.usage_in_bytes"))
	if v := optUint(filepath.Join(mem, "memory.memsw.limit_in_bytes")); v < noLimitV1 {
		d.MemorySwapLimit = v
	}
	if oom, err := readKV(filepath.Join(mem, "memory.oom_control")); err == nil {
		d.OOMKills = oom["oom_kill"]
	}
	d.Procs, errs = readProcs(filepath.Join(mem, "cgroup.procs"), errs)
	if p, ok := paths["cpuacct"]; ok {
		if st, err := readKV(filepath.Join(r.Root, "cpuacct", p, "cpuacct.stat")); err == nil {
			d.CPUUserNanos = st["user"] * (1e9 / userHZ)
			d.CPUSystemNanos = st["system"] * (1e9 / userHZ)
		} else {
			errs = append(errs, err)
		}
	}
	if p, ok := paths["cpu"]; ok {
		dir := filepath.Join(r.Root, "cpu", p)
		if st, err := readKV(filepath.Join(dir, "cpu.stat")); err == nil {
			d.CFSPeriods, d.CFSThrottled, d.CFSThrottledNanos = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		}
		d.CPUPeriod = optUint(filepath.Join(dir, "cpu.cfs_period_us"))
		d.CPUShares = optUint(filepath.Join(dir, "cpu.shares"))
	}
	if p, ok := paths["pids"]; ok {
		d.ThreadsMax = optUint(filepath.Join(r.Root, "pids", p, "pids.max"))
	}
	if p, ok := paths["blkio"]; ok {
		dir := filepath.Join(r.Root, "blkio", p)
		bytesB, _ := os.ReadFile(filepath.Join(dir, "blkio.throttle.io_service_bytes"))
		iosB, _ := os.ReadFile(filepath.Join(dir, "blkio.throttle.io_serviced"))
		d.Blkio = ParseBlkioV1(bytesB, iosB)
	}
	return d, errors.Join(errs...)
}

func (r Reader) detailV2(path string) (Detail, error) {
	var d Detail
	var errs []error
	dir := filepath.Join(r.Root, path)
	stat, err := readKV(filepath.Join(dir, "memory.stat"))
	if err != nil {
		errs = append(errs, err)
	}
	d.MemoryCache = stat["file"]
	d.MemoryMappedFile = stat["file_mapped"]
	d.MemoryKernel = stat["kernel"]
	if d.MemoryKernel == 0 {
		d.MemoryKernel = stat["kernel_stack"] + stat["slab"] + stat["sock"] + stat["percpu"]
	}
	d.MemorySwap = optUint(filepath.Join(dir, "memory.swap.current"))
	d.MemoryMaxUsage = optUint(filepath.Join(dir, "memory.peak"))
	d.MemorySwapLimit = optUint(filepath.Join(dir, "memory.swap.max"))
	if ev, err := readKV(filepath.Join(dir, "memory.events")); err == nil {
		d.OOMKills = ev["oom_kill"]
		d.MemoryFailcnt = ev["max"]
	}
	d.Procs, errs = readProcs(filepath.Join(dir, "cgroup.procs"), errs)
	cpu, err := readKV(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		errs = append(errs, err)
	}
	d.CPUUserNanos = cpu["user_usec"] * 1000
	d.CPUSystemNanos = cpu["system_usec"] * 1000
	d.CFSPeriods, d.CFSThrottled, d.CFSThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		_, d.CPUPeriod = ParseCPUMax(b)
	}
	if w := optUint(filepath.Join(dir, "cpu.weight")); w > 0 {
		d.CPUShares = WeightToShares(w)
	}
	d.ThreadsMax = optUint(filepath.Join(dir, "pids.max"))
	if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		d.Blkio = ParseIOStat(b)
	}
	return d, errors.Join(errs...)
}

// ParseBlkioV1 merges v1 blkio.throttle.io_service_bytes and
// io_serviced ("MAJ:MIN Read N" lines, and a "Total N" line) per device,
// in the order devices first appear.
func ParseBlkioV1(serviceBytes, serviced []byte) []BlkioDevice {
	var out []BlkioDevice
	index := map[[2]uint64]int{}
	add := func(b []byte, read, write func(*BlkioDevice, uint64)) {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			major, minor, ok := parseDev(f[0])
			v, err := strconv.ParseUint(f[2], 10, 64)
			if !ok || err != nil {
				continue
			}
			key := [2]uint64{major, minor}
			i, seen := index[key]
			if !seen {
				i = len(out)
				index[key] = i
				out = append(out, BlkioDevice{Major: major, Minor: minor})
			}
			switch f[1] {
			case "Read":
				read(&out[i], v)
			case "Write":
				write(&out[i], v)
			}
		}
	}
	add(serviceBytes, func(d *BlkioDevice, v uint64) { d.ReadBytes = v }, func(d *BlkioDevice, v uint64) { d.WriteBytes = v })
	add(serviced, func(d *BlkioDevice, v uint64) { d.Reads = v }, func(d *BlkioDevice, v uint64) { d.Writes = v })
	return out
}

// ParseIOStat parses v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...".
func ParseIOStat(b []byte) []BlkioDevice {
	var out []BlkioDevice
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		major, minor, ok := parseDev(f[0])
		if !ok {
			continue
		}
		d := BlkioDevice{Major: major, Minor: minor}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				d.ReadBytes = n
			case "wbytes":
				d.WriteBytes = n
			case "rios":
				d.Reads = n
			case "wios":
				d.Writes = n
			}
		}
		out = append(out, d)
	}
	return out
}

// ParseCPUMax parses v2 cpu.max ("max 100000" or "50000 100000"): the
// quota (0 for none) and the period, both in microseconds.
func ParseCPUMax(b []byte) (quota, period uint64) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	quota, _ = strconv.ParseUint(f[0], 10, 64) // "max" stays 0
	period, _ = strconv.ParseUint(f[1], 10, 64)
	return quota, period
}

// WeightToShares converts a v2 cpu.weight (1-10000) to v1 shares
// (2-262144), inverting the conversion runc applies.
func WeightToShares(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	return 2 + ((weight-1)*262142)/9999
}

func parseDev(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.ParseUint(a, 10, 64)
	minor, err2 := strconv.ParseUint(b, 10, 64)
	return major, minor, err1 == nil && err2 == nil
}

// optUint reads a number from a file the kernel may lack, or a "max";
// either is 0.
func optUint(path string) uint64 {
	v, _ := readUint(path, nil)
	return v
}

func readProcs(path string, errs []error) ([]int, []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, append(errs, err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, errs
}

// Processes counts what processes pids hold, from /proc.
type Processes struct {
	Processes uint64
	Threads   uint64
	FDs       uint64
	Sockets   uint64
}

// CountProcesses counts the threads, open files and sockets of pids; a
// process gone meanwhile is not counted.
func (r Reader) CountProcesses(pids []int) Processes {
	var p Processes
	for _, pid := range pids {
		dir := filepath.Join(r.Proc, strconv.Itoa(pid))
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			continue
		}
		p.Processes++
		p.Threads += uint64(len(tasks))
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		p.FDs += uint64(len(fds))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				p.Sockets++
			}
		}
	}
	return p
}
