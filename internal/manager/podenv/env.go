package podenv

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Var is one resolved environment variable.
type Var struct{ Name, Value string }

// Env resolves a container's environment as the kubelet's
// makeEnvironmentVariables does: envFrom first, then env in order, each
// literal value expanded against what came before it. A later definition
// of a name replaces the value of the earlier one and keeps its position
// (the kubelet returns a map; a stable order makes runs reproducible).
// Warnings name what was skipped; a missing ConfigMap, Secret or key that
// is not optional is an error wrapping ErrNotFound.
func Env(pod *corev1.Pod, c *corev1.Container, objs Objects, node Node) (vars []Var, warnings []string, err error) {
	var env orderedEnv
	for i, from := range c.EnvFrom {
		w, err := envFrom(&env, from, objs)
		if err != nil {
			return nil, nil, fmt.Errorf("envFrom[%d]: %w", i, err)
		}
		for _, s := range w {
			warnings = append(warnings, fmt.Sprintf("envFrom[%d]: %s", i, s))
		}
	}
	for _, e := range c.Env {
		value, skip, err := envValue(pod, c, e, objs, node, env.lookup)
		if err != nil {
			return nil, nil, fmt.Errorf("env %q: %w", e.Name, err)
		}
		if skip {
			continue
		}
		env.set(e.Name, value)
	}
	return env.vars, warnings, nil
}

// envFrom adds every key of one envFrom source.
func envFrom(env *orderedEnv, from corev1.EnvFromSource, objs Objects) ([]string, error) {
	var (
		data     map[string][]byte
		optional bool
		what     string
		err      error
	)
	switch {
	case from.ConfigMapRef != nil:
		optional = isTrue(from.ConfigMapRef.Optional)
		what = fmt.Sprintf("configMap %q", from.ConfigMapRef.Name)
		var cm *corev1.ConfigMap
		if cm, err = objs.ConfigMap(from.ConfigMapRef.Name); err == nil {
			// Only data: the kubelet does not put binaryData into the
			// environment.
			data = make(map[string][]byte, len(cm.Data))
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
		}
	case from.SecretRef != nil:
		optional = isTrue(from.SecretRef.Optional)
		what = fmt.Sprintf("secret %q", from.SecretRef.Name)
		var s *corev1.Secret
		if s, err = objs.Secret(from.SecretRef.Name); err == nil {
			data = SecretData(s)
		}
	default:
		return nil, errors.New("neither configMapRef nor secretRef is set")
	}
	if err != nil {
		if optional {
			return nil, nil
		}
		return nil, err
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var warnings []string
	for _, k := range keys {
		name := from.Prefix + k
		if errs := validation.IsRelaxedEnvVarName(name); len(errs) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s: skipped key %q: %q is not a valid environment variable name: %s",
				what, k, name, strings.Join(errs, "; ")))
			continue
		}
		env.set(name, string(data[k]))
	}
	return warnings, nil
}

// envValue resolves one env entry; skip reports an optional source that is
// missing, which leaves the variable out entirely.
func envValue(pod *corev1.Pod, c *corev1.Container, e corev1.EnvVar, objs Objects, node Node,
	lookup func(string) (string, bool)) (value string, skip bool, err error) {
	if e.Value != "" || e.ValueFrom == nil {
		return Expand(e.Value, lookup), false, nil
	}
	src := e.ValueFrom
	switch {
	case src.FieldRef != nil:
		if v := src.FieldRef.APIVersion; v != "" && v != "v1" {
			return "", false, fmt.Errorf("valueFrom.fieldRef.apiVersion %q: only v1 is supported", v)
		}
		switch src.FieldRef.FieldPath {
		case "metadata.labels", "metadata.annotations":
			return "", false, fmt.Errorf("valueFrom.fieldRef.fieldPath %q: only supported in downwardAPI volumes", src.FieldRef.FieldPath)
		}
		v, err := FieldValue(pod, node, src.FieldRef.FieldPath)
		return v, false, err
	case src.ResourceFieldRef != nil:
		v, err := ResourceValue(pod, node, c.Name, src.ResourceFieldRef)
		return v, false, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := objs.ConfigMap(ref.Name)
		if err != nil {
			return "", isTrue(ref.Optional), optionalErr(ref.Optional, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			err := fmt.Errorf("configMap %q key %q: %w", ref.Name, ref.Key, ErrNotFound)
			return "", isTrue(ref.Optional), optionalErr(ref.Optional, err)
		}
		return v, false, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := objs.Secret(ref.Name)
		if err != nil {
			return "", isTrue(ref.Optional), optionalErr(ref.Optional, err)
		}
		v, ok := SecretData(s)[ref.Key]
		if !ok {
			err := fmt.Errorf("secret %q key %q: %w", ref.Name, ref.Key, ErrNotFound)
			return "", isTrue(ref.Optional), optionalErr(ref.Optional, err)
		}
		return string(v), false, nil
	case src.FileKeyRef != nil:
		return "", false, errors.New("valueFrom.fileKeyRef is not supported by berth run")
	}
	return "", false, errors.New("valueFrom: no source is set")
}

func optionalErr(optional *bool, err error) error {
	if isTrue(optional) {
		return nil
	}
	return err
}

func isTrue(b *bool) bool { return b != nil && *b }

// orderedEnv is the environment being built: first-definition order, last
// value wins.
type orderedEnv struct {
	vars  []Var
	index map[string]int
}

func (e *orderedEnv) set(name, value string) {
	if e.index == nil {
		e.index = make(map[string]int)
	}
	if i, ok := e.index[name]; ok {
		e.vars[i].Value = value
		return
	}
	e.index[name] = len(e.vars)
	e.vars = append(e.vars, Var{Name: name, Value: value})
}

func (e *orderedEnv) lookup(name string) (string, bool) {
	i, ok := e.index[name]
	if !ok {
		return "", false
	}
	return e.vars[i].Value, true
}
