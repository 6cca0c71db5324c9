// Package volume materializes a Pod's volumes on the host, as the kubelet's
// volume plugins do for the kinds that need no API server or storage
// driver, and turns a container's volumeMounts into CRI mounts.
//
// Layout: <Root>/<pod uid>/volumes/<plugin>/<volume name>, the plugin named
// as the kubelet names it (kubernetes.io~empty-dir, ...) so the tree reads
// the same to anyone who knows /var/lib/kubelet/pods.
package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// Plugin directory names, as the kubelet's plugins name theirs.
const (
	pluginEmptyDir    = "kubernetes.io~empty-dir"
	pluginConfigMap   = "kubernetes.io~configmap"
	pluginSecret      = "kubernetes.io~secret"
	pluginDownwardAPI = "kubernetes.io~downward-api"
	pluginProjected   = "kubernetes.io~projected"
)

// Options configure a Manager.
type Options struct {
	// Root is where pod volume directories live:
	// <Root>/<pod uid>/volumes/<kind>/<name>.
	Root   string
	Logger *slog.Logger
	// DryRun computes and checks volumes without changing the host:
	// nothing is created, written or mounted, and hostPath types that
	// would create their path are not checked.
	DryRun bool
}

// Manager prepares and removes pod volumes under one root. It keeps no
// state of its own: the directories and mounts are the state, so a new
// Manager picks up where a crashed one left off.
type Manager struct {
	root   string
	logger *slog.Logger
	dryRun bool
	// beforeSwap, when set, runs after a new atomic payload is written and
	// before the ..data symlink moves to it: tests use it to look at the
	// volume mid-update.
	beforeSwap func(dir string)
	// versionGrace is how old a version two changes back must be before
	// it is removed (defaultVersionGrace; tests set 0).
	versionGrace time.Duration
	// openBeneath resolves a subPath inside its volume: openat2 where the
	// kernel has it (tests force the fallback).
	openBeneath openBeneathFunc
	// beforeBind, when set, runs after a subPath is opened and before it
	// is bound, with <volume>/<subPath>: tests swap it for a symlink there.
	beforeBind func(path string)
}

// defaultVersionGrace covers a reader stalled between resolving ..data
// and opening a file under a burst of rewrites.
const defaultVersionGrace = 10 * time.Second

// New returns a Manager rooted at opts.Root, creating it.
func New(opts Options) (*Manager, error) {
	if opts.Root == "" || !filepath.IsAbs(opts.Root) {
		return nil, fmt.Errorf("volume root %q: must be an absolute path", opts.Root)
	}
	// 0750 like the kubelet's pods dir: runtimes bind as root, and other
	// host users have no business reading secrets.
	if opts.DryRun {
		// Nothing is made.
	} else if err := os.MkdirAll(opts.Root, 0o750); err != nil {
		return nil, fmt.Errorf("create volume root %q: %w", opts.Root, err)
	}
	root := filepath.Clean(opts.Root)
	if !opts.DryRun {
		// The mount table names mount points by their real path; a root
		// through a symlink would never match it, and a bind would be
		// stacked again on every container start.
		resolved, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, fmt.Errorf("resolve volume root %q: %w", opts.Root, err)
		}
		root = resolved
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		root: root, logger: logger, dryRun: opts.DryRun,
		versionGrace: defaultVersionGrace, openBeneath: pickOpenBeneath(),
	}, nil
}

// Volume is one prepared volume: the host path to bind and whether it must
// be mounted read-only.
type Volume struct {
	HostPath string
	ReadOnly bool
	// Relabel asks the runtime to relabel for SELinux. Set for the
	// directories berth made for the pod, never for a hostPath (relabeling
	// /etc would break the host), as the kubelet does.
	Relabel bool
}

// Prepare creates or refreshes every volume of pod.Spec.Volumes and returns
// them by name. It is idempotent: emptyDir contents are kept, and
// configMap, secret, downwardAPI and projected contents are rewritten
// atomically only when they changed.
func (m *Manager) Prepare(ctx context.Context, pod *corev1.Pod, objs podenv.Objects, node podenv.Node) (map[string]Volume, []string, error) {
	podDir, err := m.podDir(pod)
	if err != nil {
		return nil, nil, err
	}
	vols := make(map[string]Volume, len(pod.Spec.Volumes))
	var warnings []string
	for i := range pod.Spec.Volumes {
		if err := ctx.Err(); err != nil {
			return nil, warnings, err
		}
		v := &pod.Spec.Volumes[i]
		if err := checkName(v.Name); err != nil {
			return nil, warnings, fmt.Errorf("spec.volumes[%d].name: %w", i, err)
		}
		if _, dup := vols[v.Name]; dup {
			return nil, warnings, fmt.Errorf("spec.volumes[%d].name: duplicate volume name %q", i, v.Name)
		}
		p := &preparer{m: m, pod: pod, objs: objs, node: node, podDir: podDir, v: v}
		vol, err := p.prepare()
		for _, w := range p.warnings {
			warnings = append(warnings, fmt.Sprintf("spec.volumes[%d] (%s): %s", i, v.Name, w))
		}
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) && error(fe) == err {
				return nil, warnings, fmt.Errorf("spec.volumes[%d].%s (%s): %w", i, fe.field, v.Name, fe.err)
			}
			return nil, warnings, fmt.Errorf("spec.volumes[%d] (%s): %w", i, v.Name, err)
		}
		vols[v.Name] = vol
	}
	return vols, warnings, nil
}

// Cleanup unmounts and removes everything Prepare and Mounts made for pod,
// subPath binds included (they sit under the pod's directory). It is
// idempotent; hostPath volumes are never touched.
func (m *Manager) Cleanup(ctx context.Context, pod *corev1.Pod) error {
	podDir, err := m.podDir(pod)
	if err != nil {
		return err
	}
	if err := unmountUnder(ctx, podDir); err != nil {
		return fmt.Errorf("clean up volumes of pod %q: %w", pod.Name, err)
	}
	// RemoveAll would descend into a mount that is still there and delete
	// what it holds; make sure there is none.
	left, err := mountsUnder(podDir)
	if err != nil {
		return fmt.Errorf("clean up volumes of pod %q: %w", pod.Name, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("clean up volumes of pod %q: still mounted: %s", pod.Name, strings.Join(left, ", "))
	}
	if err := os.RemoveAll(podDir); err != nil {
		return fmt.Errorf("clean up volumes of pod %q: %w", pod.Name, err)
	}
	return nil
}

func (m *Manager) podDir(pod *corev1.Pod) (string, error) {
	uid := string(pod.UID)
	if err := checkName(uid); err != nil {
		return "", fmt.Errorf("pod %q metadata.uid: %w", pod.Name, err)
	}
	return filepath.Join(m.root, uid), nil
}

// checkName rejects what cannot be one path element; the API server would
// have rejected it anyway (names are DNS labels, UIDs are UUIDs).
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid name", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%q must not contain '/'", name)
	}
	return nil
}

// fieldError is an error about one field below spec.volumes[i].
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func fieldErrorf(field, format string, args ...any) error {
	return &fieldError{field: field, err: fmt.Errorf(format, args...)}
}
