package podenv

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func resourcePod() *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{
			Name: "init",
			Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			},
		}},
		Containers: []corev1.Container{
			{
				Name: "app",
				Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{
						corev1.ResourceCPU:              resource.MustParse("1500m"),
						corev1.ResourceMemory:           resource.MustParse("128Mi"),
						corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
						"hugepages-2Mi":                 resource.MustParse("4Mi"),
					},
					Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("250m"),
					},
				},
			},
			{Name: "bare"},
		},
	}}
}

func TestResourceValue(t *testing.T) {
	node := Node{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("4"),
		corev1.ResourceMemory:           resource.MustParse("8Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}}
	q := resource.MustParse
	tests := []struct {
		name      string
		container string
		ref       corev1.ResourceFieldSelector
		pod       func(*corev1.Pod)
		node      *Node
		want      string
		wantErr   string
	}{
		{name: "cpu limit rounds up to cores", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.cpu"}, want: "2"},
		{name: "cpu limit in millicores", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: q("1m")}, want: "1500"},
		{name: "cpu request", container: "app", ref: corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: q("1m")}, want: "250"},
		{name: "cpu request rounds up", container: "app", ref: corev1.ResourceFieldSelector{Resource: "requests.cpu"}, want: "1"},
		{name: "memory limit bytes", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.memory"}, want: "134217728"},
		{name: "memory limit Mi", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: q("1Mi")}, want: "128"},
		{name: "memory limit rounds up", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: q("100Mi")}, want: "2"},
		{name: "memory request defaults to limit", container: "app", ref: corev1.ResourceFieldSelector{Resource: "requests.memory", Divisor: q("1Mi")}, want: "128"},
		{name: "ephemeral storage Gi", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.ephemeral-storage", Divisor: q("1Gi")}, want: "1"},
		{name: "hugepages", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.hugepages-2Mi", Divisor: q("1Mi")}, want: "4"},
		{name: "ref container name wins", container: "app", ref: corev1.ResourceFieldSelector{ContainerName: "init", Resource: "limits.cpu", Divisor: q("1m")}, want: "100"},
		{name: "cpu limit unset uses node", container: "bare", ref: corev1.ResourceFieldSelector{Resource: "limits.cpu"}, want: "4"},
		{name: "memory limit unset uses node", container: "bare", ref: corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: q("1Gi")}, want: "8"},
		{name: "storage limit unset uses node", container: "bare", ref: corev1.ResourceFieldSelector{Resource: "limits.ephemeral-storage", Divisor: q("1Gi")}, want: "100"},
		{name: "request unset is zero", container: "bare", ref: corev1.ResourceFieldSelector{Resource: "requests.memory"}, want: "0"},
		{name: "pod-level limit before node", container: "bare", ref: corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: q("1Mi")},
			pod: func(p *corev1.Pod) {
				p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: q("512Mi")}}
			}, want: "512"},
		{name: "unset limit and unknown allocatable", container: "bare", ref: corev1.ResourceFieldSelector{Resource: "limits.cpu"}, node: &Node{},
			wantErr: `resourceFieldRef "limits.cpu" of container "bare": no cpu limit is set and the node's allocatable cpu is unknown`},
		{name: "unknown container", container: "nope", ref: corev1.ResourceFieldSelector{Resource: "limits.cpu"}, wantErr: `container "nope" not found`},
		{name: "unsupported resource", container: "app", ref: corev1.ResourceFieldSelector{Resource: "limits.gpu"}, wantErr: `resourceFieldRef "limits.gpu": unsupported resource`},
		{name: "bad kind", container: "app", ref: corev1.ResourceFieldSelector{Resource: "cpu"}, wantErr: "unsupported resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := resourcePod()
			if tt.pod != nil {
				tt.pod(pod)
			}
			n := node
			if tt.node != nil {
				n = *tt.node
			}
			got, err := ResourceValue(pod, n, tt.container, &tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
