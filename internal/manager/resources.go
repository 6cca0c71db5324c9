package manager

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's cgroup arithmetic (pkg/kubelet/cm and qos): CPU weight in
// shares of 1024 per CPU, a CFS quota over a 100ms period, and an
// oom_score_adj per QoS class.
const (
	minShares      = 2
	maxShares      = 262144
	sharesPerCPU   = 1024
	milliCPUPerCPU = 1000
	quotaPeriod    = 100000 // µs
	minQuota       = 1000   // µs

	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000

	nodeCriticalPriorityClass = "system-node-critical"
)

// milliCPUToShares: no request still gets the minimum weight, not zero
// (which would mean the runtime's default of 1024).
func milliCPUToShares(milliCPU int64) int64 {
	if milliCPU == 0 {
		return minShares
	}
	return min(max(milliCPU*sharesPerCPU/milliCPUPerCPU, minShares), maxShares)
}

// milliCPUToQuota: no limit is quota 0, unlimited.
func milliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	return max(milliCPU*period/milliCPUPerCPU, minQuota)
}

// defaultedRequests are the container's requests with each missing one
// taken from its limit: the apiserver's defaulting, which a pod read from
// a file never went through.
func defaultedRequests(r corev1.ResourceRequirements) corev1.ResourceList {
	out := r.Requests.DeepCopy()
	for name, limit := range r.Limits {
		if _, ok := out[name]; !ok {
			if out == nil {
				out = corev1.ResourceList{}
			}
			out[name] = limit.DeepCopy()
		}
	}
	return out
}

// containerResources is the kubelet's calculateLinuxResources plus the
// OOM score and hugepages. Resources it cannot enforce are warned about.
func containerResources(pod *corev1.Pod, c *corev1.Container, kind containerKind, field string, opts configOptions) (*runtimeapi.LinuxContainerResources, []string, error) {
	warnings, err := checkResources(c, field)
	if err != nil {
		return nil, nil, err
	}
	requests := defaultedRequests(c.Resources)
	cpuLimit := c.Resources.Limits[corev1.ResourceCPU]
	cpuRequest := requests[corev1.ResourceCPU]
	memLimit := c.Resources.Limits[corev1.ResourceMemory]
	r := &runtimeapi.LinuxContainerResources{
		CpuShares:          milliCPUToShares(cpuRequest.MilliValue()),
		CpuPeriod:          quotaPeriod,
		CpuQuota:           milliCPUToQuota(cpuLimit.MilliValue(), quotaPeriod),
		MemoryLimitInBytes: memLimit.Value(),
	}
	adj, w := oomScoreAdj(pod, c, kind, opts.Node.Allocatable)
	r.OomScoreAdj = adj
	warnings = append(warnings, w...)
	if r.HugepageLimits, err = hugepageLimits(c.Resources, field); err != nil {
		return nil, nil, err
	}
	return r, warnings, nil
}

// checkResources refuses what the apiserver would and warns about what
// only other kubelet machinery (device plugins, DRA, eviction, in-place
// resize) would honour.
func checkResources(c *corev1.Container, field string) ([]string, error) {
	var warnings []string
	prefix := field + ".resources."
	for _, kind := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
		for _, name := range slices.Sorted(maps.Keys(kind.list)) {
			q := kind.list[name]
			f := fmt.Sprintf("%s%s[%s]", prefix, kind.name, name)
			if q.Sign() < 0 {
				return nil, fmt.Errorf("%s: %s must not be negative", f, q.String())
			}
			switch {
			case name == corev1.ResourceCPU || name == corev1.ResourceMemory:
			case strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
			case name == corev1.ResourceEphemeralStorage:
				if kind.name == "limits" {
					warnings = append(warnings, f+": not enforced: berth run does no eviction")
				}
			default:
				warnings = append(warnings, f+": ignored: extended resources need device plugins, which berth run does not have")
			}
		}
	}
	for name, req := range c.Resources.Requests {
		limit, ok := c.Resources.Limits[name]
		if ok && req.Cmp(limit) > 0 {
			return nil, fmt.Errorf("%srequests[%s]: %s must be less than or equal to the limit %s", prefix, name, req.String(), limit.String())
		}
		if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) && (!ok || req.Cmp(limit) != 0) {
			return nil, fmt.Errorf("%srequests[%s]: hugepages cannot be overcommitted: set limits[%s] equal to it", prefix, name, name)
		}
	}
	if len(c.Resources.Claims) > 0 {
		warnings = append(warnings, prefix+"claims: ignored: dynamic resource allocation is not supported")
	}
	if len(c.ResizePolicy) > 0 {
		warnings = append(warnings, field+".resizePolicy: ignored: berth run has no in-place resize; a changed spec restarts the container")
	}
	return warnings, nil
}

// hugepageLimits: one limit per page size the container asks for. The
// kubelet also sets 0 for every other page size the host has; berth run
// does not read the host's page sizes, so unrequested sizes are left to
// the runtime.
func hugepageLimits(r corev1.ResourceRequirements, field string) ([]*runtimeapi.HugepageLimit, error) {
	var out []*runtimeapi.HugepageLimit
	for _, name := range slices.Sorted(maps.Keys(r.Limits)) {
		sizeText, ok := strings.CutPrefix(string(name), corev1.ResourceHugePagesPrefix)
		if !ok {
			continue
		}
		f := fmt.Sprintf("%s.resources.limits[%s]", field, name)
		size, err := resource.ParseQuantity(sizeText)
		if err != nil {
			return nil, fmt.Errorf("%s: page size: %w", f, err)
		}
		pageSize, err := hugePageUnit(size.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		limit := r.Limits[name]
		out = append(out, &runtimeapi.HugepageLimit{PageSize: pageSize, Limit: uint64(limit.Value())})
	}
	return out, nil
}

// hugePageUnit writes a page size the way cgroups name it: 2097152 is
// "2MB", 1073741824 is "1GB".
func hugePageUnit(size int64) (string, error) {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	if size <= 0 {
		return "", fmt.Errorf("page size %d must be positive", size)
	}
	i := 0
	for size%1024 == 0 && i < len(units)-1 {
		size /= 1024
		i++
	}
	if size > 1024 && i < len(units)-1 {
		return "", fmt.Errorf("page size %d%s is not a power-of-two multiple of a unit", size, units[i])
	}
	return fmt.Sprintf("%d%s", size, units[i]), nil
}

// oomScoreAdj is the kubelet's GetContainerOOMScoreAdjust: the more of
// the node's memory a burstable container requests, the later it is
// killed, but always before guaranteed containers and after best-effort
// ones. A sidecar is killed no earlier than the regular container with
// the smallest request, so it outlives what it serves.
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, kind containerKind, allocatable corev1.ResourceList) (int64, []string) {
	if pod.Spec.PriorityClassName == nodeCriticalPriorityClass {
		return guaranteedOOMScoreAdj, nil
	}
	switch podQOS(pod) {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj, nil
	case corev1.PodQOSBestEffort:
		return besteffortOOMScoreAdj, nil
	}
	capacity := allocatable[corev1.ResourceMemory]
	if capacity.Value() <= 0 {
		return besteffortOOMScoreAdj - 1, []string{fmt.Sprintf(
			"container %q: node memory capacity unknown; oom_score_adj of a burstable container set to %d",
			c.Name, besteffortOOMScoreAdj-1)}
	}
	adjFor := func(c *corev1.Container) int64 {
		mem := defaultedRequests(c.Resources)[corev1.ResourceMemory]
		return 1000 - 1000*mem.Value()/capacity.Value()
	}
	adj := adjFor(c)
	if kind == sidecarContainer && len(pod.Spec.Containers) > 0 {
		smallest := slices.MinFunc(pod.Spec.Containers, func(a, b corev1.Container) int {
			ma, mb := defaultedRequests(a.Resources)[corev1.ResourceMemory], defaultedRequests(b.Resources)[corev1.ResourceMemory]
			return ma.Cmp(mb)
		})
		adj = min(adj, adjFor(&smallest))
	}
	// Stay above every guaranteed container and below best-effort ones.
	return min(max(adj, 1000+guaranteedOOMScoreAdj), besteffortOOMScoreAdj-1), nil
}

// podQOS is the API's QoS class over CPU and memory of every container,
// with requests defaulted from limits.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	add := func(sum corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		total := sum[name]
		total.Add(q)
		sum[name] = total
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			limitsFound := 0
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := defaultedRequests(c.Resources)[name]; ok && q.Sign() > 0 {
					add(requests, name, q)
				}
				if q, ok := c.Resources.Limits[name]; ok && q.Sign() > 0 {
					add(limits, name, q)
					limitsFound++
				}
			}
			if limitsFound < 2 {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if !guaranteed || len(requests) != len(limits) {
		return corev1.PodQOSBurstable
	}
	for name, req := range requests {
		if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
			return corev1.PodQOSBurstable
		}
	}
	return corev1.PodQOSGuaranteed
}
