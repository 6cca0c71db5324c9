// Package podenv resolves what a container sees of its Pod, as the kubelet
// does: the downward API (fieldRef, resourceFieldRef), $(VAR) expansion,
// and the environment built from env and envFrom. There is no API server:
// the ConfigMaps and Secrets come with the Pod in the same file.
package podenv

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ErrNotFound is wrapped by every error about a ConfigMap, Secret or key
// the Pod references but its file does not provide.
var ErrNotFound = errors.New("not found")

// Objects are the ConfigMaps and Secrets that came with the Pod in the same
// file, by name (all in the Pod's namespace).
type Objects struct {
	ConfigMaps map[string]*corev1.ConfigMap
	Secrets    map[string]*corev1.Secret
}

// Node is what the host offers, used where the kubelet would use node
// allocatable (resourceFieldRef of a container without a limit).
type Node struct {
	Name        string              // spec.nodeName
	Allocatable corev1.ResourceList // cpu, memory, ephemeral-storage
	HostIPs     []string
}

// ConfigMap returns the named ConfigMap or an error wrapping ErrNotFound.
func (o Objects) ConfigMap(name string) (*corev1.ConfigMap, error) {
	if cm, ok := o.ConfigMaps[name]; ok && cm != nil {
		return cm, nil
	}
	return nil, fmt.Errorf("configMap %q: %w", name, ErrNotFound)
}

// Secret returns the named Secret or an error wrapping ErrNotFound.
func (o Objects) Secret(name string) (*corev1.Secret, error) {
	if s, ok := o.Secrets[name]; ok && s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
}

// SecretData is the secret's content as the API server would store it:
// stringData is merged over data on write, and nothing merges it here.
func SecretData(s *corev1.Secret) map[string][]byte {
	out := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// ConfigMapData is the configMap's content: data and binaryData share one
// key space (the API server rejects a key in both).
func ConfigMapData(cm *corev1.ConfigMap) map[string][]byte {
	out := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	return out
}

// quantity returns the quantity of name in l and whether it is set.
func quantity(l corev1.ResourceList, name corev1.ResourceName) (resource.Quantity, bool) {
	q, ok := l[name]
	return q, ok
}
