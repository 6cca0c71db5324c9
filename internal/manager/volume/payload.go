package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// defaultFileMode is the API default for configMap, secret, downwardAPI
// and projected files.
const defaultFileMode fs.FileMode = 0o644

// builder collects a payload, checking each path once and remembering
// which field put it there so a clash names both.
type builder struct {
	files payload
	from  map[string]string
}

func newBuilder() *builder {
	return &builder{files: payload{}, from: map[string]string{}}
}

func (b *builder) add(field, rel string, f file) error {
	clean, err := checkItemPath(rel)
	if err != nil {
		return fieldErrorf(field, "path %q: %w", rel, err)
	}
	for have, by := range b.from {
		if have == clean || strings.HasPrefix(have, clean+"/") || strings.HasPrefix(clean, have+"/") {
			return fieldErrorf(field, "path %q conflicts with %q from %s", clean, have, by)
		}
	}
	b.files[clean] = f
	b.from[clean] = field
	return nil
}

// checkItemPath confines a file path to its volume, as API validation and
// the kubelet's AtomicWriter do; it returns the path cleaned.
func checkItemPath(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("must not be empty")
	case filepath.IsAbs(p):
		return "", errors.New("must be a relative path")
	case len(p) > 4096:
		return "", errors.New("must be at most 4096 characters")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", errors.New("must not contain '..'")
		}
		if len(el) > 255 {
			return "", errors.New("must not have an element longer than 255 characters")
		}
	}
	clean := filepath.Clean(p)
	switch {
	case clean == ".":
		return "", errors.New("must name a file")
	case strings.HasPrefix(clean, ".."):
		// ..data and the version directories live there.
		return "", errors.New("must not start with '..'")
	}
	return clean, nil
}

// fileMode turns an API mode into a file mode, def when unset.
func fileMode(field string, mode *int32, def fs.FileMode) (fs.FileMode, error) {
	if mode == nil {
		return def, nil
	}
	if *mode < 0 || *mode > 0o777 {
		return 0, fieldErrorf(field, "%#o must be between 0 and 0777", *mode)
	}
	return fs.FileMode(*mode), nil
}

// addKeys puts the keys of one ConfigMap or Secret into b: every key under
// its own name, or only items, each at its path. A missing object or key is
// skipped when optional.
func addKeys(b *builder, field, what string, data map[string][]byte, found bool, items []corev1.KeyToPath, optional bool, mode fs.FileMode) error {
	if !found {
		if optional {
			return nil
		}
		return fieldErrorf(field+".name", "%s: %w", what, podenv.ErrNotFound)
	}
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := b.add(field, k, file{data: data[k], mode: mode}); err != nil {
				return err
			}
		}
		return nil
	}
	for j, it := range items {
		f := fmt.Sprintf("%s.items[%d]", field, j)
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fieldErrorf(f+".key", "%s key %q: %w", what, it.Key, podenv.ErrNotFound)
		}
		m, err := fileMode(f+".mode", it.Mode, mode)
		if err != nil {
			return err
		}
		if err := b.add(f+".path", it.Path, file{data: v, mode: m}); err != nil {
			return err
		}
	}
	return nil
}

func (p *preparer) addConfigMap(b *builder, field, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode) error {
	var data map[string][]byte
	cm, err := p.objs.ConfigMap(name)
	if err == nil {
		data = podenv.ConfigMapData(cm)
	}
	return addKeys(b, field, fmt.Sprintf("configMap %q", name), data, err == nil, items, isTrue(optional), mode)
}

func (p *preparer) addSecret(b *builder, field, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode) error {
	var data map[string][]byte
	s, err := p.objs.Secret(name)
	if err == nil {
		data = podenv.SecretData(s)
	}
	return addKeys(b, field, fmt.Sprintf("secret %q", name), data, err == nil, items, isTrue(optional), mode)
}

func (p *preparer) configMapFiles(src *corev1.ConfigMapVolumeSource) (payload, error) {
	mode, err := fileMode("configMap.defaultMode", src.DefaultMode, defaultFileMode)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	err = p.addConfigMap(b, "configMap", src.Name, src.Items, src.Optional, mode)
	return b.files, err
}

func (p *preparer) secretFiles(src *corev1.SecretVolumeSource) (payload, error) {
	mode, err := fileMode("secret.defaultMode", src.DefaultMode, defaultFileMode)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	err = p.addSecret(b, "secret", src.SecretName, src.Items, src.Optional, mode)
	return b.files, err
}

func (p *preparer) downwardAPIFiles(src *corev1.DownwardAPIVolumeSource) (payload, error) {
	mode, err := fileMode("downwardAPI.defaultMode", src.DefaultMode, defaultFileMode)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	err = p.addDownwardAPI(b, "downwardAPI", src.Items, mode)
	return b.files, err
}

func (p *preparer) addDownwardAPI(b *builder, field string, items []corev1.DownwardAPIVolumeFile, mode fs.FileMode) error {
	for j, it := range items {
		f := fmt.Sprintf("%s.items[%d]", field, j)
		m, err := fileMode(f+".mode", it.Mode, mode)
		if err != nil {
			return err
		}
		var value string
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			return fieldErrorf(f, "fieldRef and resourceFieldRef are mutually exclusive")
		case it.FieldRef != nil:
			if v := it.FieldRef.APIVersion; v != "" && v != "v1" {
				return fieldErrorf(f+".fieldRef.apiVersion", "%q: only v1 is supported", v)
			}
			// Only metadata: the rest is not known before the sandbox
			// exists, and the API server rejects it in a volume.
			if !strings.HasPrefix(it.FieldRef.FieldPath, "metadata.") {
				return fieldErrorf(f+".fieldRef.fieldPath", "%q is not supported in a downwardAPI volume (only metadata fields are)", it.FieldRef.FieldPath)
			}
			if value, err = podenv.FieldValue(p.pod, p.node, it.FieldRef.FieldPath); err != nil {
				return &fieldError{field: f + ".fieldRef.fieldPath", err: err}
			}
		case it.ResourceFieldRef != nil:
			if it.ResourceFieldRef.ContainerName == "" {
				return fieldErrorf(f+".resourceFieldRef.containerName", "must be set in a volume")
			}
			if value, err = podenv.ResourceValue(p.pod, p.node, "", it.ResourceFieldRef); err != nil {
				return &fieldError{field: f + ".resourceFieldRef", err: err}
			}
		default:
			return fieldErrorf(f, "one of fieldRef or resourceFieldRef must be set")
		}
		if err := b.add(f+".path", it.Path, file{data: []byte(value), mode: m}); err != nil {
			return err
		}
	}
	return nil
}

func (p *preparer) projectedFiles(src *corev1.ProjectedVolumeSource) (payload, error) {
	mode, err := fileMode("projected.defaultMode", src.DefaultMode, defaultFileMode)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	for k, s := range src.Sources {
		f := fmt.Sprintf("projected.sources[%d]", k)
		var err error
		switch {
		case s.ServiceAccountToken != nil:
			err = fieldErrorf(f+".serviceAccountToken", "not supported by berth run: there is no API server to issue a token")
		case s.ClusterTrustBundle != nil:
			err = fieldErrorf(f+".clusterTrustBundle", "not supported by berth run: there is no API server to read it from")
		case s.PodCertificate != nil:
			err = fieldErrorf(f+".podCertificate", "not supported by berth run: there is no API server to issue it")
		case countSet(s.ConfigMap != nil, s.Secret != nil, s.DownwardAPI != nil) > 1:
			err = fieldErrorf(f, "exactly one source may be set per entry")
		case s.ConfigMap != nil:
			err = p.addConfigMap(b, f+".configMap", s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode)
		case s.Secret != nil:
			err = p.addSecret(b, f+".secret", s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode)
		case s.DownwardAPI != nil:
			err = p.addDownwardAPI(b, f+".downwardAPI", s.DownwardAPI.Items, mode)
		default:
			err = fieldErrorf(f, "no source is set")
		}
		if err != nil {
			return nil, err
		}
	}
	return b.files, nil
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func isTrue(b *bool) bool { return b != nil && *b }
