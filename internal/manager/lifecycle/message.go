package lifecycle

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Message is the kubelet's text for the FailedPostStartHook /
// FailedPreStopHook event of a failed handler, from what Run returned.
func Message(pod *corev1.Pod, c *corev1.Container, h *corev1.LifecycleHandler, msg string, err error) string {
	switch {
	case err == nil:
		return ""
	case h == nil:
		return fmt.Sprintf("Cannot run handler: %v", err)
	case h.Exec != nil:
		return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, podDesc(pod), err, msg)
	case h.HTTPGet != nil:
		return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, podDesc(pod), err)
	case h.Sleep != nil:
		return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, c.Name, podDesc(pod), err)
	}
	return fmt.Sprintf("Cannot run handler: %v", err)
}

// podDesc is the kubelet's format.Pod: "name_namespace(uid)"; the
// underscore cannot appear in a pod name, so the text parses back.
func podDesc(pod *corev1.Pod) string {
	if pod == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
