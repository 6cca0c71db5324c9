// Package config holds berth serve's settings: the one place flags,
// environment and defaults meet, validated before anything starts.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Serve is the configuration of `berth serve`.
type Serve struct {
	Listen     string
	DockerHost string
	RootDir    string
	PauseImage string
	CNIConfDir string
	CNIBinDirs []string
	LogLevel   string
	StopGrace  time.Duration
	ResolvConf string
	// StreamingAddr is where exec, attach and port-forward sessions are
	// served (host:port; port 0 picks a free one).
	StreamingAddr    string
	StreamingTLSCert string
	StreamingTLSKey  string
	// DockerLogMaxSize and DockerLogMaxFiles, when set, bound Docker's own
	// json-file log of each container, which berth follows to write the
	// CRI log; unset, it grows for the container's whole life. Bounded,
	// a burst larger than the files hold, written faster than berth
	// copies it, loses lines from the CRI log: the default keeps them all.
	DockerLogMaxSize  string
	DockerLogMaxFiles int
}

// Defaults.
const (
	DefaultListen     = "unix:///run/berth/berth.sock"
	DefaultDockerHost = "unix:///var/run/docker.sock"
	DefaultRootDir    = "/var/lib/berth"
	DefaultCNIConfDir = "/etc/cni/net.d"
	DefaultCNIBinDirs = "/opt/cni/bin:/usr/lib/cni"
)

// DefaultServe is the configuration with every default applied; DOCKER_HOST
// wins over the built-in Docker socket, as for the docker CLI.
func DefaultServe() Serve {
	docker := os.Getenv("DOCKER_HOST")
	if docker == "" {
		docker = DefaultDockerHost
	}
	return Serve{
		Listen:     DefaultListen,
		DockerHost: docker,
		RootDir:    DefaultRootDir,
		PauseImage: DefaultPauseImage,
		CNIConfDir: DefaultCNIConfDir,
		CNIBinDirs: filepath.SplitList(DefaultCNIBinDirs),
		LogLevel:   "info",
		StopGrace:  10 * time.Second,
		ResolvConf: "/etc/resolv.conf",
		// Loopback: the kubelet on this host is the only client, and
		// proxies the sessions to kubectl.
		StreamingAddr:     "127.0.0.1:0",
		DockerLogMaxFiles: 2,
	}
}

// Validate reports every invalid setting at once.
func (c Serve) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("--listen: empty"))
	} else if !strings.HasPrefix(c.Listen, "unix://") && !strings.HasPrefix(c.Listen, "/") {
		errs = append(errs, fmt.Errorf("--listen %q: must be unix:///path", c.Listen))
	}
	if !filepath.IsAbs(c.RootDir) {
		errs = append(errs, fmt.Errorf("--root-dir %q: must be absolute", c.RootDir))
	}
	if !filepath.IsAbs(c.CNIConfDir) {
		errs = append(errs, fmt.Errorf("--cni-conf-dir %q: must be absolute", c.CNIConfDir))
	}
	for _, d := range c.CNIBinDirs {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("--cni-bin-dir %q: must be absolute", d))
		}
	}
	if c.PauseImage == "" {
		errs = append(errs, errors.New("--pod-infra-image: empty"))
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.StreamingAddr); err != nil {
		errs = append(errs, fmt.Errorf("--streaming-address %q: %w", c.StreamingAddr, err))
	}
	if (c.StreamingTLSCert == "") != (c.StreamingTLSKey == "") {
		errs = append(errs, errors.New("--streaming-tls-cert and --streaming-tls-key go together"))
	}
	if c.DockerLogMaxSize != "" && !dockerSize.MatchString(c.DockerLogMaxSize) {
		errs = append(errs, fmt.Errorf("--docker-log-max-size %q: want a size such as 500k, 10m or 1g", c.DockerLogMaxSize))
	}
	if c.DockerLogMaxFiles < 1 {
		errs = append(errs, fmt.Errorf("--docker-log-max-files %d: at least 1", c.DockerLogMaxFiles))
	}
	if c.StopGrace < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace %s: negative", c.StopGrace))
	}
	return errors.Join(errs...)
}

// dockerSize is a size as Docker's json-file max-size takes it.
var dockerSize = regexp.MustCompile(`^[1-9][0-9]*[kmg]?$`)

// ParseLevel reads a --log-level value.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}
