// Package podfile reads what `berth run` is given: one Pod, and the
// ConfigMaps and Secrets it uses, as YAML or JSON documents.
package podfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/manager/podenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// File is what a manifest holds.
type File struct {
	Pod     *corev1.Pod
	Objects podenv.Objects
}

// Parse reads every document of r. It wants exactly one Pod; ConfigMaps
// and Secrets are kept by name; a List's items count as documents. Any
// other kind, an unknown field or a namespace that differs from the Pod's
// is an error naming the document.
func Parse(r io.Reader) (*File, error) {
	f := &File{Objects: podenv.Objects{ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{}}}
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for n := 1; ; n++ {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		doc := bytes.TrimSpace(raw.Raw)
		if len(doc) == 0 || bytes.Equal(doc, []byte("null")) {
			continue
		}
		if err := f.add(doc, fmt.Sprintf("document %d", n)); err != nil {
			return nil, err
		}
	}
	if f.Pod == nil {
		return nil, errors.New("no Pod in the manifest")
	}
	ns := f.Pod.Namespace
	for name, cm := range f.Objects.ConfigMaps {
		if cm.Namespace != "" && ns != "" && cm.Namespace != ns {
			return nil, fmt.Errorf("ConfigMap %q is in namespace %q, the Pod in %q", name, cm.Namespace, ns)
		}
	}
	for name, s := range f.Objects.Secrets {
		if s.Namespace != "" && ns != "" && s.Namespace != ns {
			return nil, fmt.Errorf("Secret %q is in namespace %q, the Pod in %q", name, s.Namespace, ns)
		}
	}
	return f, nil
}

func (f *File) add(doc []byte, where string) error {
	var meta struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if meta.APIVersion != "v1" {
		return fmt.Errorf("%s: apiVersion %q: berth run reads core v1 objects (Pod, ConfigMap, Secret, List)", where, meta.APIVersion)
	}
	switch meta.Kind {
	case "Pod":
		if f.Pod != nil {
			return fmt.Errorf("%s: a second Pod (%q): berth run runs one Pod", where, f.Pod.Name)
		}
		var pod corev1.Pod
		if err := strict(doc, &pod, where); err != nil {
			return err
		}
		if pod.Name == "" {
			return fmt.Errorf("%s: Pod: metadata.name is required", where)
		}
		f.Pod = &pod
	case "ConfigMap":
		var cm corev1.ConfigMap
		if err := strict(doc, &cm, where); err != nil {
			return err
		}
		if cm.Name == "" {
			return fmt.Errorf("%s: ConfigMap: metadata.name is required", where)
		}
		f.Objects.ConfigMaps[cm.Name] = &cm
	case "Secret":
		var s corev1.Secret
		if err := strict(doc, &s, where); err != nil {
			return err
		}
		if s.Name == "" {
			return fmt.Errorf("%s: Secret: metadata.name is required", where)
		}
		// The API server folds stringData into data.
		for k, v := range s.StringData {
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
		f.Objects.Secrets[s.Name] = &s
	case "List":
		for i, item := range meta.Items {
			if err := f.add(item, fmt.Sprintf("%s, item %d", where, i)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: kind %q: berth run reads Pod, ConfigMap, Secret and List", where, meta.Kind)
	}
	return nil
}

// strict decodes doc into obj and refuses fields the type does not have,
// so that a misspelt field is an error, not a silent default.
func strict(doc []byte, obj any, where string) error {
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}
