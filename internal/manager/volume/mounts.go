package volume

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// Mounts turns c.VolumeMounts into CRI mounts, in the order given. env
// resolves subPathExpr; vols are what Prepare returned. A subPath is
// bound onto a path of berth's own under the pod's directory, and that
// path is what the runtime gets (see bindSubPath); Cleanup unmounts it.
// In a dry run nothing is made and HostPath names where the bind would be.
func (m *Manager) Mounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vols map[string]Volume, env func(string) (string, bool)) ([]*runtimeapi.Mount, error) {
	podDir, err := m.podDir(pod)
	if err != nil {
		return nil, err
	}
	mounts := make([]*runtimeapi.Mount, 0, len(c.VolumeMounts))
	for j := range c.VolumeMounts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		vm := &c.VolumeMounts[j]
		field := fmt.Sprintf("container %q volumeMounts[%d]", c.Name, j)
		mnt, sub, err := mount(c, vm, vols, env)
		if err != nil {
			return nil, fmt.Errorf("%s%w", field, err)
		}
		if sub != nil {
			if err := checkName(c.Name); err != nil {
				return nil, fmt.Errorf("container %q name: %w", c.Name, err)
			}
			s := subPathMount{podDir: podDir, volume: vm.Name, container: c.Name, index: j, vol: vols[vm.Name], sub: sub.path}
			if mnt.HostPath, err = m.bindSubPath(ctx, s); err != nil {
				return nil, fmt.Errorf("%s.%s %q: %w", field, sub.field, sub.path, err)
			}
		}
		mounts = append(mounts, mnt)
	}
	return mounts, nil
}

// subPathRef is a volumeMount's subPath, expanded, and the field it came
// from.
type subPathRef struct {
	field string
	path  string
}

// mount builds one CRI mount, HostPath the volume's, and returns the
// subPath to bind if there is one; errors start with the sub-field they
// are about (".subPath: ...").
func mount(c *corev1.Container, vm *corev1.VolumeMount, vols map[string]Volume, env func(string) (string, bool)) (*runtimeapi.Mount, *subPathRef, error) {
	vol, ok := vols[vm.Name]
	if !ok {
		return nil, nil, fmt.Errorf(".name: no volume named %q in spec.volumes", vm.Name)
	}
	if vm.MountPath == "" || !filepath.IsAbs(vm.MountPath) {
		return nil, nil, fmt.Errorf(".mountPath: %q must be an absolute path", vm.MountPath)
	}
	var sub *subPathRef
	if vm.SubPath != "" {
		sub = &subPathRef{field: "subPath", path: vm.SubPath}
	}
	if vm.SubPathExpr != "" {
		if vm.SubPath != "" {
			return nil, nil, errors.New(".subPathExpr: subPath and subPathExpr are mutually exclusive")
		}
		expanded, err := expandSubPath(vm.SubPathExpr, env)
		if err != nil {
			return nil, nil, fmt.Errorf(".subPathExpr %q: %w", vm.SubPathExpr, err)
		}
		sub = &subPathRef{field: "subPathExpr", path: expanded}
	}
	if sub != nil {
		if err := checkSubPath(sub.path); err != nil {
			return nil, nil, fmt.Errorf(".%s %q: %w", sub.field, sub.path, err)
		}
	}
	m := &runtimeapi.Mount{
		ContainerPath:  vm.MountPath,
		HostPath:       vol.HostPath,
		Readonly:       vm.ReadOnly || vol.ReadOnly,
		SelinuxRelabel: vol.Relabel,
	}
	var err error
	if m.Propagation, err = propagation(c, vm); err != nil {
		return nil, nil, err
	}
	if vm.RecursiveReadOnly != nil {
		switch *vm.RecursiveReadOnly {
		case corev1.RecursiveReadOnlyDisabled:
		case corev1.RecursiveReadOnlyEnabled:
			if !vm.ReadOnly || m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, nil, errors.New(".recursiveReadOnly: Enabled needs readOnly: true and mountPropagation None")
			}
			m.RecursiveReadOnly = true
		case corev1.RecursiveReadOnlyIfPossible:
			// Whether the runtime can is not known here; like the kubelet
			// on a runtime without the feature, fall back to plain
			// read-only.
		default:
			return nil, nil, fmt.Errorf(".recursiveReadOnly: %q is not one of Disabled, IfPossible, Enabled", *vm.RecursiveReadOnly)
		}
	}
	for _, opt := range vm.BindMountOptions {
		switch opt {
		case "noexec", "nodev", "nosuid":
			m.MountOptions = append(m.MountOptions, opt)
		default:
			return nil, nil, fmt.Errorf(".bindMountOptions: %q is not one of noexec, nodev, nosuid", opt)
		}
	}
	return m, sub, nil
}

func propagation(c *corev1.Container, vm *corev1.VolumeMount) (runtimeapi.MountPropagation, error) {
	if vm.MountPropagation == nil {
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	}
	switch *vm.MountPropagation {
	case corev1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case corev1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case corev1.MountPropagationBidirectional:
		// Mounts made inside would leak onto the host: the API server
		// allows it for privileged containers only.
		if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
			return 0, errors.New(".mountPropagation: Bidirectional is allowed only in a privileged container")
		}
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf(".mountPropagation: %q is not one of None, HostToContainer, Bidirectional", *vm.MountPropagation)
}

// expandSubPath expands $(VAR) in a subPathExpr; unlike in env, a variable
// that is undefined or empty is an error, as in the kubelet.
func expandSubPath(expr string, env func(string) (string, bool)) (string, error) {
	missing := map[string]bool{}
	out := podenv.Expand(expr, func(name string) (string, bool) {
		v, ok := env(name)
		if !ok || v == "" {
			missing[name] = true
		}
		return v, true
	})
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("missing value for %s", strings.Join(names, ", "))
	}
	return out, nil
}
