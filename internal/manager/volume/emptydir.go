package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-project/berth/internal/manager/podenv"
)

func (p *preparer) emptyDir(ed *corev1.EmptyDirVolumeSource) (Volume, error) {
	dir := p.dir(pluginEmptyDir)
	switch ed.Medium {
	case corev1.StorageMediumDefault:
		if ed.SizeLimit != nil && !ed.SizeLimit.IsZero() {
			// The kubelet enforces it by evicting the pod; there is no
			// eviction here.
			p.warnf("emptyDir.sizeLimit %s is not enforced for a disk-backed emptyDir", ed.SizeLimit.String())
		}
		if err := ensureDir(dir); err != nil {
			return Volume{}, err
		}
	case corev1.StorageMediumMemory:
		if _, err := ensureTmpfs(dir, memorySize(p.pod, p.node, ed.SizeLimit)); err != nil {
			return Volume{}, err
		}
	default:
		return Volume{}, fieldErrorf("emptyDir.medium", "medium %q is not supported by berth run (want \"\" or Memory)", ed.Medium)
	}
	if gid := p.fsGroup(); gid != nil {
		// Like fsGroupChangePolicy OnRootMismatch: the contents belong to
		// the pod once it ran, so only a root that is not yet the group's
		// gets the walk.
		if !rootHasGroup(dir, *gid) {
			if err := applyFSGroup(dir, *gid, false); err != nil {
				return Volume{}, err
			}
		}
	}
	return Volume{HostPath: dir, Relabel: true}, nil
}

// ensureDir makes dir world-writable as the kubelet makes an emptyDir:
// containers run as any user.
func ensureDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return fmt.Errorf("create %q: %w", filepath.Dir(dir), err)
	}
	err := os.Mkdir(dir, 0o777)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %q: %w", dir, err)
	}
	// Past the umask.
	return os.Chmod(dir, 0o777)
}

// ensureTmpfs mounts a tmpfs on dir unless one is there already; size 0
// leaves the kernel's default.
func ensureTmpfs(dir string, size int64) (mounted bool, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("create %q: %w", dir, err)
	}
	isMount, err := isMountPoint(dir)
	if err != nil || isMount {
		return false, err
	}
	opts := ""
	if size > 0 {
		opts = fmt.Sprintf("size=%d", size)
	}
	if err := mountTmpfs(dir, opts); err != nil {
		return false, fmt.Errorf("mount tmpfs on %q (%s): %w", dir, opts, err)
	}
	return true, nil
}

// isMountPoint reports whether dir is the root of a mount: a device that
// differs from its parent's. That holds for every tmpfs this package mounts.
func isMountPoint(dir string) (bool, error) {
	var st, parent syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %q: %w", dir, err)
	}
	if err := syscall.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %q: %w", filepath.Dir(dir), err)
	}
	return st.Dev != parent.Dev, nil
}

// memorySize is the tmpfs size the kubelet gives a memory-backed volume:
// the node's allocatable memory, capped by the pod's memory limit, capped
// by the volume's sizeLimit. 0 means no bound is known.
func memorySize(pod *corev1.Pod, node podenv.Node, sizeLimit *resource.Quantity) int64 {
	var size int64
	if q, ok := node.Allocatable[corev1.ResourceMemory]; ok {
		size = q.Value()
	}
	capAt := func(v int64) {
		if v > 0 && (size == 0 || v < size) {
			size = v
		}
	}
	capAt(podMemoryLimit(pod))
	if sizeLimit != nil {
		capAt(sizeLimit.Value())
	}
	return size
}

// podMemoryLimit is the pod's memory limit as its cgroup would get it, or
// 0 when some container has none (then the pod is unbounded).
func podMemoryLimit(pod *corev1.Pod) int64 {
	if r := pod.Spec.Resources; r != nil {
		if q, ok := r.Limits[corev1.ResourceMemory]; ok {
			return q.Value()
		}
	}
	limit := func(c *corev1.Container) (int64, bool) {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		return q.Value(), ok
	}
	// Sidecars (restartable init containers) run alongside everything
	// after them; a plain init container runs with the sidecars before it.
	var sidecars, peakInit int64
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l, ok := limit(c)
		if !ok {
			return 0
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars += l
			peakInit = max(peakInit, sidecars)
			continue
		}
		peakInit = max(peakInit, sidecars+l)
	}
	sum := sidecars
	for i := range pod.Spec.Containers {
		l, ok := limit(&pod.Spec.Containers[i])
		if !ok {
			return 0
		}
		sum += l
	}
	return max(sum, peakInit)
}
