package naming

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Label keys berth sets on every container it creates. CRI labels and
// annotations are stored as one JSON document each rather than one Docker
// label per key: Docker merges an image's LABELs into the container's labels,
// so a per-key scheme would let an image inject CRI labels or annotations.
// These keys are always set at create, so an image can never supply them.
const (
	LabelManaged     = "io.berth.managed"
	LabelType        = "io.berth.type"
	LabelSandboxID   = "io.berth.sandbox-id"
	LabelMetadata    = "io.berth.metadata"
	LabelLabels      = "io.berth.labels"
	LabelAnnotations = "io.berth.annotations"
	LabelImage       = "io.berth.image"
	LabelLogPath     = "io.berth.log-path"
	LabelCreatedAt   = "io.berth.created-at"

	// Keys the kubelet's tools (cAdvisor) read from Docker directly.
	labelKubeType          = "io.kubernetes.docker.type"
	labelKubeContainerName = "io.kubernetes.container.name"
	labelKubePodName       = "io.kubernetes.pod.name"
	labelKubePodNamespace  = "io.kubernetes.pod.namespace"
	labelKubePodUID        = "io.kubernetes.pod.uid"
	labelKubeSandboxID     = "io.kubernetes.sandbox.id"
)

// Values of LabelType.
const (
	TypeSandbox   = "podsandbox"
	TypeContainer = "container"
)

// SandboxLabels are the Docker labels of a sandbox's pause container.
func SandboxLabels(c *runtimeapi.PodSandboxConfig, createdAt int64) (map[string]string, error) {
	m := c.GetMetadata()
	l := map[string]string{
		labelKubeType:          TypeSandbox,
		labelKubeContainerName: SandboxContainerName,
		labelKubePodName:       m.GetName(),
		labelKubePodNamespace:  m.GetNamespace(),
		labelKubePodUID:        m.GetUid(),
		LabelManaged:           "true",
		LabelType:              TypeSandbox,
		LabelCreatedAt:         strconv.FormatInt(createdAt, 10),
	}
	if err := putJSON(l, LabelMetadata, m); err != nil {
		return nil, err
	}
	if err := putJSON(l, LabelLabels, nonNil(c.GetLabels())); err != nil {
		return nil, err
	}
	if err := putJSON(l, LabelAnnotations, nonNil(c.GetAnnotations())); err != nil {
		return nil, err
	}
	return l, nil
}

// ContainerLabels are the Docker labels of a container in a sandbox.
func ContainerLabels(sandboxID string, c *runtimeapi.ContainerConfig, s *runtimeapi.PodSandboxConfig, logPath string, createdAt int64) (map[string]string, error) {
	sm := s.GetMetadata()
	l := map[string]string{
		labelKubeType:          TypeContainer,
		labelKubeContainerName: c.GetMetadata().GetName(),
		labelKubePodName:       sm.GetName(),
		labelKubePodNamespace:  sm.GetNamespace(),
		labelKubePodUID:        sm.GetUid(),
		labelKubeSandboxID:     sandboxID,
		LabelManaged:           "true",
		LabelType:              TypeContainer,
		LabelSandboxID:         sandboxID,
		LabelImage:             c.GetImage().GetImage(),
		LabelLogPath:           logPath,
		LabelCreatedAt:         strconv.FormatInt(createdAt, 10),
	}
	if err := putJSON(l, LabelMetadata, c.GetMetadata()); err != nil {
		return nil, err
	}
	if err := putJSON(l, LabelLabels, nonNil(c.GetLabels())); err != nil {
		return nil, err
	}
	if err := putJSON(l, LabelAnnotations, nonNil(c.GetAnnotations())); err != nil {
		return nil, err
	}
	return l, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func putJSON(l map[string]string, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode label %s: %w", key, err)
	}
	l[key] = string(b)
	return nil
}

// Decoded is the CRI view stored in a container's labels.
type Decoded struct {
	Type        string
	SandboxID   string
	Labels      map[string]string
	Annotations map[string]string
	Image       string
	LogPath     string
	CreatedAt   int64
	raw         map[string]string
}

// Decode reads back what SandboxLabels or ContainerLabels stored.
func Decode(l map[string]string) (Decoded, error) {
	d := Decoded{
		Type:      l[LabelType],
		SandboxID: l[LabelSandboxID],
		Image:     l[LabelImage],
		LogPath:   l[LabelLogPath],
		raw:       l,
	}
	if l[LabelManaged] != "true" {
		return d, fmt.Errorf("labels: %w", errNotOurs)
	}
	if v := l[LabelCreatedAt]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return d, fmt.Errorf("label %s: %w", LabelCreatedAt, err)
		}
		d.CreatedAt = n
	}
	d.Labels = map[string]string{}
	d.Annotations = map[string]string{}
	if err := getJSON(l, LabelLabels, &d.Labels); err != nil {
		return d, err
	}
	if err := getJSON(l, LabelAnnotations, &d.Annotations); err != nil {
		return d, err
	}
	return d, nil
}

// SandboxMetadata decodes the metadata of a sandbox.
func (d Decoded) SandboxMetadata() (*runtimeapi.PodSandboxMetadata, error) {
	m := &runtimeapi.PodSandboxMetadata{}
	return m, getJSON(d.raw, LabelMetadata, m)
}

// ContainerMetadata decodes the metadata of a container.
func (d Decoded) ContainerMetadata() (*runtimeapi.ContainerMetadata, error) {
	m := &runtimeapi.ContainerMetadata{}
	return m, getJSON(d.raw, LabelMetadata, m)
}

func getJSON(l map[string]string, key string, v any) error {
	s, ok := l[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("decode label %s: %w", key, err)
	}
	return nil
}

// Clone returns a copy of m, never nil.
func Clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}
