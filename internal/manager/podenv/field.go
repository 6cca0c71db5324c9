package podenv

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FieldValue resolves a downward-API fieldRef path against pod, as the
// kubelet does for env (fieldRef) and for downwardAPI volumes. The pod's
// IPs come from pod.Status (the caller fills them once the sandbox runs);
// the host IPs from node, falling back to pod.Status.
func FieldValue(pod *corev1.Pod, node Node, fieldPath string) (string, error) {
	if path, key, ok := splitSubscript(fieldPath); ok {
		var m map[string]string
		switch path {
		case "metadata.labels":
			m = pod.Labels
		case "metadata.annotations":
			m = pod.Annotations
		default:
			return "", fmt.Errorf("fieldPath %q: unsupported subscripted field %q", fieldPath, path)
		}
		// The kubelet checks the subscript so a typo fails loudly instead of
		// yielding "" forever.
		if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) > 0 {
			return "", fmt.Errorf("fieldPath %q: invalid key subscript: %s", fieldPath, strings.Join(errs, "; "))
		}
		return m[key], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return namespace(pod), nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return node.Name, nil
	case "spec.serviceAccountName":
		// The ServiceAccount admission plugin defaults the name in a
		// cluster; nothing else will here.
		if pod.Spec.ServiceAccountName == "" {
			return "default", nil
		}
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		ips := hostIPs(pod, node)
		if len(ips) == 0 {
			return "", nil
		}
		return ips[0], nil
	case "status.hostIPs":
		return strings.Join(hostIPs(pod, node), ","), nil
	case "status.podIP":
		ips := podIPs(pod)
		if len(ips) == 0 {
			return "", nil
		}
		return ips[0], nil
	case "status.podIPs":
		return strings.Join(podIPs(pod), ","), nil
	}
	return "", fmt.Errorf("fieldPath %q: unsupported field", fieldPath)
}

// namespace is the Pod's namespace, "default" when the file leaves it out
// (kubectl would put it there).
func namespace(pod *corev1.Pod) string {
	if pod.Namespace == "" {
		return "default"
	}
	return pod.Namespace
}

func hostIPs(pod *corev1.Pod, node Node) []string {
	if len(node.HostIPs) > 0 {
		return node.HostIPs
	}
	var ips []string
	for _, ip := range pod.Status.HostIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && pod.Status.HostIP != "" {
		ips = []string{pod.Status.HostIP}
	}
	return ips
}

func podIPs(pod *corev1.Pod) []string {
	var ips []string
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []string{pod.Status.PodIP}
	}
	return ips
}

// splitSubscript splits "metadata.labels['k']" into its path and key.
func splitSubscript(fieldPath string) (path, key string, ok bool) {
	s, found := strings.CutSuffix(fieldPath, "']")
	if !found {
		return "", "", false
	}
	path, key, found = strings.Cut(s, "['")
	if !found || path == "" {
		return "", "", false
	}
	return path, key, true
}

// formatMap renders a map as the kubelet writes it into a downwardAPI file:
// sorted `k="v"` lines, the value Go-quoted, no trailing newline.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return strings.Join(lines, "\n")
}
