package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// Mounts turns c.VolumeMounts into CRI mounts, in the order given. env
// resolves subPathExpr; vols are what Prepare returned.
func Mounts(c *corev1.Container, vols map[string]Volume, env func(string) (string, bool)) ([]*runtimeapi.Mount, error) {
	mounts := make([]*runtimeapi.Mount, 0, len(c.VolumeMounts))
	for j := range c.VolumeMounts {
		vm := &c.VolumeMounts[j]
		field := fmt.Sprintf("container %q volumeMounts[%d]", c.Name, j)
		m, err := mount(c, vm, vols, env)
		if err != nil {
			return nil, fmt.Errorf("%s%w", field, err)
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// mount builds one CRI mount; errors start with the sub-field they are
// about (".subPath: ...").
func mount(c *corev1.Container, vm *corev1.VolumeMount, vols map[string]Volume, env func(string) (string, bool)) (*runtimeapi.Mount, error) {
	vol, ok := vols[vm.Name]
	if !ok {
		return nil, fmt.Errorf(".name: no volume named %q in spec.volumes", vm.Name)
	}
	if vm.MountPath == "" || !filepath.IsAbs(vm.MountPath) {
		return nil, fmt.Errorf(".mountPath: %q must be an absolute path", vm.MountPath)
	}
	sub := vm.SubPath
	if vm.SubPathExpr != "" {
		if vm.SubPath != "" {
			return nil, errors.New(".subPathExpr: subPath and subPathExpr are mutually exclusive")
		}
		var err error
		if sub, err = expandSubPath(vm.SubPathExpr, env); err != nil {
			return nil, fmt.Errorf(".subPathExpr %q: %w", vm.SubPathExpr, err)
		}
	}
	hostPath := vol.HostPath
	if sub != "" {
		field := ".subPath"
		if vm.SubPathExpr != "" {
			field = ".subPathExpr"
		}
		resolved, err := subPath(vol.HostPath, sub)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", field, sub, err)
		}
		hostPath = resolved
	}
	m := &runtimeapi.Mount{
		ContainerPath:  vm.MountPath,
		HostPath:       hostPath,
		Readonly:       vm.ReadOnly || vol.ReadOnly,
		SelinuxRelabel: vol.Relabel,
	}
	var err error
	if m.Propagation, err = propagation(c, vm); err != nil {
		return nil, err
	}
	if vm.RecursiveReadOnly != nil {
		switch *vm.RecursiveReadOnly {
		case corev1.RecursiveReadOnlyDisabled:
		case corev1.RecursiveReadOnlyEnabled:
			if !vm.ReadOnly || m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, errors.New(".recursiveReadOnly: Enabled needs readOnly: true and mountPropagation None")
			}
			m.RecursiveReadOnly = true
		case corev1.RecursiveReadOnlyIfPossible:
			// Whether the runtime can is not known here; like the kubelet
			// on a runtime without the feature, fall back to plain
			// read-only.
		default:
			return nil, fmt.Errorf(".recursiveReadOnly: %q is not one of Disabled, IfPossible, Enabled", *vm.RecursiveReadOnly)
		}
	}
	for _, opt := range vm.BindMountOptions {
		switch opt {
		case "noexec", "nodev", "nosuid":
			m.MountOptions = append(m.MountOptions, opt)
		default:
			return nil, fmt.Errorf(".bindMountOptions: %q is not one of noexec, nodev, nosuid", opt)
		}
	}
	return m, nil
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

// subPath resolves sub inside the volume at root, creating missing
// directories as the kubelet does. Every existing component is resolved
// through its symlinks and must stay inside the volume, so a link planted
// by a container cannot aim a later mount at the host.
func subPath(root, sub string) (string, error) {
	if filepath.IsAbs(sub) {
		return "", errors.New("must be a relative path")
	}
	if hasDotDot(sub) {
		return "", errors.New("must not contain '..'")
	}
	base, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolve volume %q: %w", root, err)
	}
	info, err := os.Stat(base)
	if err != nil {
		return "", err
	}
	if !info.IsDir() {
		return "", fmt.Errorf("volume %q is not a directory", root)
	}
	// New directories get the volume root's mode, as the kubelet does.
	perm := info.Mode().Perm()
	cur := base
	for _, el := range strings.Split(filepath.Clean(sub), string(filepath.Separator)) {
		if el == "." || el == "" {
			continue
		}
		next := filepath.Join(cur, el)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(next, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("create %q: %w", next, err)
			}
			if err := os.Chmod(next, perm); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			if next, err = filepath.EvalSymlinks(next); err != nil {
				return "", fmt.Errorf("resolve %q: %w", filepath.Join(cur, el), err)
			}
		}
		if !within(base, next) {
			return "", fmt.Errorf("resolves to %q, outside the volume", next)
		}
		cur = next
	}
	return cur, nil
}

func within(base, p string) bool {
	return p == base || strings.HasPrefix(p, base+string(filepath.Separator))
}
