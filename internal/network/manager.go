// Package network attaches pods to the node's pod network through CNI
// (libcni): it picks the network config the way the kubelet and containerd
// do, runs ADD and DEL for a sandbox, and reports whether the network is
// ready. It knows nothing about CRI or Docker.
package network

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
)

// Defaults for the zero fields of Options.
const (
	DefaultConfDir  = "/etc/cni/net.d"
	DefaultBinDir   = "/opt/cni/bin"
	DefaultCacheDir = "/var/lib/cni"
)

// Options configures a Manager.
type Options struct {
	// ConfDir holds the network configs (*.conflist, *.conf, *.json).
	// Default DefaultConfDir.
	ConfDir string
	// BinDirs are searched in order for plugin binaries. Default
	// [DefaultBinDir].
	BinDirs []string
	// CacheDir is libcni's cache of ADD results and configs, which DEL
	// uses. It must survive restarts of berth. Default DefaultCacheDir.
	CacheDir string
}

// Manager runs CNI for sandboxes. It keeps no state of its own: every call
// re-reads ConfDir, and DEL reads libcni's cache. It is safe for concurrent
// use; calls for the same sandbox must not overlap.
type Manager struct {
	confDir    string
	binDirs    []string
	cni        *libcni.CNIConfig
	loopbackUp func(netnsPath string) error
}

// New returns a Manager. It does not need a network config to exist yet:
// Status reports when one is missing, and every call re-reads ConfDir.
func New(opts Options) (*Manager, error) {
	return newManager(opts, nil)
}

// newManager is New with the plugin executor replaced (nil: run binaries);
// with a fake executor there is no real namespace, so "lo" is left alone.
func newManager(opts Options, exec invoke.Exec) (*Manager, error) {
	if opts.ConfDir == "" {
		opts.ConfDir = DefaultConfDir
	}
	if len(opts.BinDirs) == 0 {
		opts.BinDirs = []string{DefaultBinDir}
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir
	}
	for _, d := range opts.BinDirs {
		if d == "" {
			return nil, errors.New("network options: empty directory in BinDirs")
		}
	}
	binDirs := append([]string(nil), opts.BinDirs...)
	m := &Manager{
		confDir:    opts.ConfDir,
		binDirs:    binDirs,
		cni:        libcni.NewCNIConfigWithCacheDir(binDirs, opts.CacheDir, exec),
		loopbackUp: setLoopbackUp,
	}
	if exec != nil {
		m.loopbackUp = func(string) error { return nil }
	}
	return m, nil
}

// Status re-reads ConfDir and returns nil when a usable network config is
// there: it parses and all its plugins are installed.
// Otherwise the error says why, for the CRI NetworkReady condition.
func (m *Manager) Status() error {
	cfg, err := loadConfig(m.confDir)
	if err != nil {
		return err
	}
	if err := m.checkPlugins(cfg); err != nil {
		return fmt.Errorf("network %q from %s: %w", cfg.list.Name, cfg.file, err)
	}
	return nil
}

// checkPlugins returns an error naming the first plugin of cfg that is
// not installed in the binary directories.
func (m *Manager) checkPlugins(cfg *config) error {
	for _, p := range cfg.list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.binDirs); err != nil {
			return fmt.Errorf("plugin %q not found in %v", p.Network.Type, m.binDirs)
		}
	}
	return nil
}
