package podenv

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ResourceValue resolves a resourceFieldRef for the named container
// (ref.ContainerName, else containerName). As the kubelet does, a limit
// that is unset falls back to the pod-level limit, then to
// node.Allocatable; a request that is unset takes the limit the container
// sets (the API server's defaulting), else 0. CPU rounds up to whole
// divisor units.
func ResourceValue(pod *corev1.Pod, node Node, containerName string, ref *corev1.ResourceFieldSelector) (string, error) {
	if ref == nil {
		return "", fmt.Errorf("resourceFieldRef: missing")
	}
	name := ref.ContainerName
	if name == "" {
		name = containerName
	}
	c := findContainer(pod, name)
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef %q: container %q not found in pod", ref.Resource, name)
	}
	kind, resName, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") || !supportedResource(resName) {
		return "", fmt.Errorf("resourceFieldRef %q: unsupported resource", ref.Resource)
	}
	rn := corev1.ResourceName(resName)

	q, err := containerQuantity(pod, node, c, kind, rn)
	if err != nil {
		return "", fmt.Errorf("resourceFieldRef %q of container %q: %w", ref.Resource, name, err)
	}

	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if rn == corev1.ResourceCPU {
		// Milli-units so that divisor "1m" and fractional CPUs work.
		return strconv.FormatInt(ceilDiv(q.MilliValue(), divisor.MilliValue()), 10), nil
	}
	if divisor.Value() == 0 {
		return "", fmt.Errorf("resourceFieldRef %q: divisor %s is below one byte", ref.Resource, divisor.String())
	}
	return strconv.FormatInt(ceilDiv(q.Value(), divisor.Value()), 10), nil
}

func supportedResource(name string) bool {
	switch corev1.ResourceName(name) {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(name, corev1.ResourceHugePagesPrefix)
}

// containerQuantity is the container's limit or request for rn after the
// defaulting the API server and the kubelet apply.
func containerQuantity(pod *corev1.Pod, node Node, c *corev1.Container, kind string, rn corev1.ResourceName) (resource.Quantity, error) {
	limit, hasLimit := quantity(c.Resources.Limits, rn)
	if kind == "requests" {
		if q, ok := quantity(c.Resources.Requests, rn); ok {
			return q, nil
		}
		if hasLimit {
			return limit, nil
		}
		return resource.Quantity{}, nil
	}
	if hasLimit {
		return limit, nil
	}
	if pod.Spec.Resources != nil {
		if q, ok := quantity(pod.Spec.Resources.Limits, rn); ok {
			return q, nil
		}
	}
	if rn != corev1.ResourceCPU && rn != corev1.ResourceMemory && rn != corev1.ResourceEphemeralStorage {
		// The kubelet defaults only these three from allocatable; an unset
		// hugepages limit reads as 0.
		return resource.Quantity{}, nil
	}
	if q, ok := quantity(node.Allocatable, rn); ok {
		return q, nil
	}
	// Returning 0 would look like a real limit to the program reading it.
	return resource.Quantity{}, fmt.Errorf("no %s limit is set and the node's allocatable %s is unknown", rn, rn)
}

// findContainer looks in containers and init containers, as the kubelet
// does.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

func ceilDiv(a, b int64) int64 {
	return int64(math.Ceil(float64(a) / float64(b)))
}
