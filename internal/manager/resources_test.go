package manager

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// rl builds a ResourceList from name, quantity pairs.
func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func nodeWith(allocatable corev1.ResourceList) podenv.Node {
	return podenv.Node{Name: "node", Allocatable: allocatable}
}

func TestMilliCPUToShares(t *testing.T) {
	for _, tt := range []struct{ milli, want int64 }{
		{0, 2}, {1, 2}, {2, 2}, {100, 102}, {250, 256}, {1000, 1024}, {2500, 2560}, {1 << 20, 262144},
	} {
		if got := milliCPUToShares(tt.milli); got != tt.want {
			t.Errorf("milliCPUToShares(%d) = %d, want %d", tt.milli, got, tt.want)
		}
	}
}

func TestMilliCPUToQuota(t *testing.T) {
	for _, tt := range []struct{ milli, want int64 }{
		{0, 0}, {5, 1000}, {10, 1000}, {100, 10000}, {500, 50000}, {1000, 100000}, {1500, 150000},
	} {
		if got := milliCPUToQuota(tt.milli, quotaPeriod); got != tt.want {
			t.Errorf("milliCPUToQuota(%d) = %d, want %d", tt.milli, got, tt.want)
		}
	}
}

func TestContainerResources(t *testing.T) {
	node := rl("memory", "4Gi")
	tests := []struct {
		name string
		res  corev1.ResourceRequirements
		want *runtimeapi.LinuxContainerResources
	}{
		{"best effort", corev1.ResourceRequirements{},
			&runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000}},
		{"request only", corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "1Gi")},
			&runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000, OomScoreAdj: 750}},
		{"limit only defaults the request: guaranteed", corev1.ResourceRequirements{Limits: rl("cpu", "500m", "memory", "256Mi")},
			&runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000,
				MemoryLimitInBytes: 256 << 20, OomScoreAdj: -997}},
		{"burstable with limits", corev1.ResourceRequirements{
			Requests: rl("cpu", "100m", "memory", "1Gi"), Limits: rl("cpu", "2", "memory", "2Gi")},
			&runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000, CpuQuota: 200000,
				MemoryLimitInBytes: 2 << 30, OomScoreAdj: 750}},
		{"hugepages", corev1.ResourceRequirements{
			Limits:   rl("memory", "1Gi", "hugepages-2Mi", "4Mi", "hugepages-1Gi", "2Gi"),
			Requests: rl("memory", "100Mi")},
			&runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, MemoryLimitInBytes: 1 << 30,
				OomScoreAdj:    976, // 1000 - 1000*100Mi/4Gi = 1000 - 24
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "1GB", Limit: 2 << 30}, {PageSize: "2MB", Limit: 4 << 20}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(func(p *corev1.Pod) { p.Spec.Containers[0].Resources = tt.res })
			got, warnings, err := containerResources(pod, &pod.Spec.Containers[0], regularContainer, "spec.containers[0]",
				configOptions{Node: nodeWith(node)})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerResourcesChecks(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*corev1.Container)
		wantWarn string
		wantErr  string
	}{
		{name: "claims", mutate: func(c *corev1.Container) { c.Resources.Claims = []corev1.ResourceClaim{{Name: "gpu"}} },
			wantWarn: "spec.containers[0].resources.claims"},
		{name: "resize policy", mutate: func(c *corev1.Container) {
			c.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: "cpu", RestartPolicy: corev1.NotRequired}}
		}, wantWarn: "spec.containers[0].resizePolicy"},
		{name: "extended resource", mutate: func(c *corev1.Container) { c.Resources.Limits = rl("nvidia.com/gpu", "1") },
			wantWarn: "spec.containers[0].resources.limits[nvidia.com/gpu]"},
		{name: "ephemeral storage", mutate: func(c *corev1.Container) { c.Resources.Limits = rl("ephemeral-storage", "1Gi") },
			wantWarn: "spec.containers[0].resources.limits[ephemeral-storage]"},
		{name: "request above limit", mutate: func(c *corev1.Container) {
			c.Resources.Requests, c.Resources.Limits = rl("cpu", "2"), rl("cpu", "1")
		}, wantErr: "spec.containers[0].resources.requests[cpu]"},
		{name: "negative", mutate: func(c *corev1.Container) { c.Resources.Limits = rl("memory", "-1") },
			wantErr: "spec.containers[0].resources.limits[memory]"},
		{name: "hugepages without limit", mutate: func(c *corev1.Container) { c.Resources.Requests = rl("hugepages-2Mi", "2Mi") },
			wantErr: "spec.containers[0].resources.requests[hugepages-2Mi]"},
		{name: "odd page size", mutate: func(c *corev1.Container) {
			c.Resources.Limits = rl("hugepages-3000", "6000")
		}, wantErr: "spec.containers[0].resources.limits[hugepages-3000]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(func(p *corev1.Pod) { tt.mutate(&p.Spec.Containers[0]) })
			_, warnings, err := containerResources(pod, &pod.Spec.Containers[0], regularContainer, "spec.containers[0]",
				configOptions{Node: nodeWith(rl("memory", "4Gi"))})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], tt.wantWarn) {
				t.Errorf("warnings = %q, want one naming %q", warnings, tt.wantWarn)
			}
		})
	}
}

func TestPodQOS(t *testing.T) {
	tests := []struct {
		name  string
		inits []corev1.ResourceRequirements
		ctrs  []corev1.ResourceRequirements
		want  corev1.PodQOSClass
	}{
		{"nothing", nil, []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"zero requests", nil, []corev1.ResourceRequirements{{Requests: rl("cpu", "0")}}, corev1.PodQOSBestEffort},
		{"extended only", nil, []corev1.ResourceRequirements{{Limits: rl("nvidia.com/gpu", "1")}}, corev1.PodQOSBestEffort},
		{"requests", nil, []corev1.ResourceRequirements{{Requests: rl("cpu", "1")}}, corev1.PodQOSBurstable},
		{"equal", nil, []corev1.ResourceRequirements{{Requests: rl("cpu", "1", "memory", "1Gi"), Limits: rl("cpu", "1", "memory", "1Gi")}},
			corev1.PodQOSGuaranteed},
		{"limits only", nil, []corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"cpu limit only", nil, []corev1.ResourceRequirements{{Limits: rl("cpu", "1")}}, corev1.PodQOSBurstable},
		{"one container without", nil, []corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi")}, {}},
			corev1.PodQOSBurstable},
		{"init container counts", []corev1.ResourceRequirements{{Requests: rl("memory", "1Gi")}},
			[]corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			for _, r := range tt.inits {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Resources: r})
			}
			for _, r := range tt.ctrs {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Resources: r})
			}
			if got := podQOS(pod); got != tt.want {
				t.Errorf("podQOS = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOOMScoreAdj(t *testing.T) {
	req := func(mem string) corev1.Container {
		return corev1.Container{Name: "c" + mem, Resources: corev1.ResourceRequirements{Requests: rl("memory", mem)}}
	}
	node := rl("memory", "10Gi")
	tests := []struct {
		name     string
		pod      *corev1.Pod
		c        int // index into Containers, or -1-i for InitContainers[i]
		node     corev1.ResourceList
		want     int64
		wantWarn bool
	}{
		{name: "burstable 10%", pod: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{req("1Gi")}}}, node: node, want: 900},
		{name: "tiny request is below best effort", pod: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{req("1")}}}, node: node, want: 999},
		{name: "request above capacity stays above guaranteed", pod: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{req("20Gi")}}},
			node: node, want: 3},
		{name: "node critical", pod: &corev1.Pod{Spec: corev1.PodSpec{PriorityClassName: "system-node-critical",
			Containers: []corev1.Container{{Name: "x"}}}}, node: node, want: -997},
		{name: "sidecar with a larger request keeps its own", pod: &corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{func() corev1.Container {
				c := req("5Gi")
				always := corev1.ContainerRestartPolicyAlways
				c.RestartPolicy = &always
				return c
			}()},
			Containers: []corev1.Container{req("1Gi"), req("2Gi")},
		}}, c: -1, node: node, want: 500},
		{name: "sidecar capped at the smallest regular container's", pod: &corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{func() corev1.Container {
				c := req("1Gi")
				always := corev1.ContainerRestartPolicyAlways
				c.RestartPolicy = &always
				return c
			}()},
			Containers: []corev1.Container{req("2Gi")},
		}}, c: -1, node: node, want: 800},
		{name: "unknown capacity", pod: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{req("1Gi")}}},
			want: 999, wantWarn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, kind := &corev1.Container{}, regularContainer
			if tt.c >= 0 {
				c = &tt.pod.Spec.Containers[tt.c]
			} else {
				c, kind = &tt.pod.Spec.InitContainers[-1-tt.c], sidecarContainer
			}
			got, warnings := oomScoreAdj(tt.pod, c, kind, tt.node)
			if got != tt.want {
				t.Errorf("oomScoreAdj = %d, want %d", got, tt.want)
			}
			if (len(warnings) > 0) != tt.wantWarn {
				t.Errorf("warnings = %q, want some: %v", warnings, tt.wantWarn)
			}
		})
	}
}

func TestHugePageUnit(t *testing.T) {
	for _, tt := range []struct {
		size int64
		want string
	}{{2 << 20, "2MB"}, {1 << 30, "1GB"}, {64 << 10, "64KB"}, {512, "512B"}} {
		got, err := hugePageUnit(tt.size)
		if err != nil || got != tt.want {
			t.Errorf("hugePageUnit(%d) = %q, %v; want %q", tt.size, got, err, tt.want)
		}
	}
	if _, err := hugePageUnit(3000); err == nil {
		t.Error("hugePageUnit(3000): no error")
	}
}
