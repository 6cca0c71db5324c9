package manager

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Event is what the kubelet would record for the pod, as `kubectl
// describe pod` lists it.
type Event struct {
	Time time.Time
	// Type is Normal or Warning.
	Type   string
	Reason string
	// Object is the pod ("pod/web") or one of its containers, named as
	// the kubelet's field path ("spec.containers{app}").
	Object  string
	Message string
}

func (m *Manager) event(object, typ, reason, format string, args ...any) {
	if m.opts.Events == nil {
		return
	}
	m.opts.Events(Event{Time: m.opts.Clock(), Type: typ, Reason: reason, Object: object, Message: fmt.Sprintf(format, args...)})
}

// podObject and containerObject name what an event is about.
func podObject(pod *corev1.Pod) string { return "pod/" + pod.Name }

func containerObject(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return "spec.initContainers{" + name + "}"
		}
	}
	return "spec.containers{" + name + "}"
}
