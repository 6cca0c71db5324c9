package manager

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Label and annotation keys put on sandboxes and containers. They are the
// kubelet's own keys, so crictl, and any tool that knows kubelet-made
// containers, reads berth-made ones the same way.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"

	annotationContainerHash             = "io.kubernetes.container.hash"
	annotationRestartCount              = "io.kubernetes.container.restartCount"
	annotationTerminationMessagePath    = "io.kubernetes.container.terminationMessagePath"
	annotationTerminationMessagePolicy  = "io.kubernetes.container.terminationMessagePolicy"
	annotationPodTerminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
)

// defaultTerminationGracePeriodSeconds is the API default, which no
// apiserver applied to a pod read from a file.
const defaultTerminationGracePeriodSeconds = 30

// sandboxLabels are the pod's labels plus the identity labels; the identity
// wins over a pod label of the same key, or the pod could hide itself from
// the UID filter the sync lists by.
func sandboxLabels(pod *corev1.Pod) map[string]string {
	labels := make(map[string]string, len(pod.Labels)+3)
	maps.Copy(labels, pod.Labels)
	labels[labelPodName] = pod.Name
	labels[labelPodNamespace] = pod.Namespace
	labels[labelPodUID] = string(pod.UID)
	return labels
}

// sandboxAnnotations copies the pod's annotations: runtimes read some of
// them (e.g. io.kubernetes.cri.* hints).
func sandboxAnnotations(pod *corev1.Pod) map[string]string {
	annotations := make(map[string]string, len(pod.Annotations))
	maps.Copy(annotations, pod.Annotations)
	return annotations
}

// containerLabels carry only identity, as the kubelet's do: pod labels
// change without restarting containers, so they are not copied.
func containerLabels(pod *corev1.Pod, c *corev1.Container) map[string]string {
	return map[string]string{
		labelPodName:       pod.Name,
		labelPodNamespace:  pod.Namespace,
		labelPodUID:        string(pod.UID),
		labelContainerName: c.Name,
	}
}

// containerAnnotations record what the sync needs to judge a container it
// finds later without the spec it was made from.
func containerAnnotations(pod *corev1.Pod, c *corev1.Container, restartCount uint32) map[string]string {
	grace := int64(defaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	return map[string]string{
		annotationContainerHash:             containerHash(c),
		annotationRestartCount:              strconv.FormatUint(uint64(restartCount), 10),
		annotationTerminationMessagePath:    terminationMessagePath(c),
		annotationTerminationMessagePolicy:  string(terminationMessagePolicy(c)),
		annotationPodTerminationGracePeriod: strconv.FormatInt(grace, 10),
	}
}

// containerHash is a stable hash of the whole container spec: berth run
// has no in-place update, so any change to the spec needs a new container.
// encoding/json is deterministic for these types (struct order, sorted map
// keys, canonical quantities).
func containerHash(c *corev1.Container) string {
	data, err := json.Marshal(c)
	if err != nil {
		// corev1.Container has no channels, funcs or cycles; Marshal
		// cannot fail on it.
		panic(fmt.Sprintf("marshal container %q: %v", c.Name, err))
	}
	h := fnv.New64a()
	h.Write(data)
	return strconv.FormatUint(h.Sum64(), 16)
}

// containerHashFrom reads back the hash containerAnnotations stored; ""
// when the container was not made by us.
func containerHashFrom(annotations map[string]string) string {
	return annotations[annotationContainerHash]
}

// restartCountFrom reads back the restart count containerAnnotations
// stored.
func restartCountFrom(annotations map[string]string) (uint32, error) {
	v, ok := annotations[annotationRestartCount]
	if !ok {
		return 0, fmt.Errorf("annotation %s: missing", annotationRestartCount)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("annotation %s: %w", annotationRestartCount, err)
	}
	return uint32(n), nil
}
