package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/config"
	"github.com/berth-project/berth/internal/containerlog"
	"github.com/berth-project/berth/internal/cri"
	"github.com/berth-project/berth/internal/criserver"
	"github.com/berth-project/berth/internal/docker"
	"github.com/berth-project/berth/internal/host"
	"github.com/berth-project/berth/internal/imagevolume"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/berth-project/berth/internal/streaming"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

func newServe(errOut io.Writer) *cobra.Command {
	cfg := config.DefaultServe()
	binDirs := strings.Join(cfg.CNIBinDirs, string(filepath.ListSeparator))
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the Kubernetes CRI on a unix socket, backed by Docker Engine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.CNIBinDirs = filepath.SplitList(binDirs)
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return serve(ctx, cfg, errOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "CRI endpoint to serve (unix:///path)")
	f.StringVar(&cfg.DockerHost, "docker-host", cfg.DockerHost, "Docker Engine endpoint (default $DOCKER_HOST, else unix:///var/run/docker.sock)")
	f.StringVar(&cfg.RootDir, "root-dir", cfg.RootDir, "directory for berth's state (sandbox checkpoints, CNI cache)")
	f.StringVar(&cfg.PauseImage, "pod-infra-image", cfg.PauseImage, "image of each pod's infra (pause) container")
	f.StringVar(&cfg.CNIConfDir, "cni-conf-dir", cfg.CNIConfDir, "directory of CNI network configs")
	f.StringVar(&binDirs, "cni-bin-dir", binDirs, "colon-separated directories of CNI plugins")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn, error")
	f.DurationVar(&cfg.StopGrace, "shutdown-grace", cfg.StopGrace, "how long in-flight calls may finish on SIGTERM")
	f.StringVar(&cfg.StreamingAddr, "streaming-address", cfg.StreamingAddr, "host:port of the exec/attach/port-forward server (port 0: a free port)")
	f.StringVar(&cfg.StreamingTLSCert, "streaming-tls-cert", "", "certificate file for the streaming server (https)")
	f.StringVar(&cfg.StreamingTLSKey, "streaming-tls-key", "", "key file for the streaming server (https)")
	f.StringVar(&cfg.DockerLogMaxSize, "docker-log-max-size", "", "bound each container's own Docker log (json-file, the source of its CRI log) to files of this size, e.g. 10m (default: unbounded; a burst larger than the files, written faster than berth copies, then loses lines)")
	f.IntVar(&cfg.DockerLogMaxFiles, "docker-log-max-files", cfg.DockerLogMaxFiles, "with --docker-log-max-size: how many files Docker keeps per container")
	return cmd
}

func serve(ctx context.Context, cfg config.Serve, errOut io.Writer) error {
	level, err := config.ParseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	log := newLogger(errOut, level)
	// The streaming libraries log through klog; send it to berth's log.
	klog.SetSlogLogger(log)
	if err := os.MkdirAll(cfg.RootDir, 0o700); err != nil {
		return fmt.Errorf("root dir: %w", err)
	}
	if err := os.Chmod(cfg.RootDir, 0o700); err != nil {
		return fmt.Errorf("root dir: %w", err)
	}
	unlock, err := lockRoot(cfg.RootDir)
	if err != nil {
		return err
	}
	defer unlock()
	h, err := host.Detect()
	if err != nil {
		return fmt.Errorf("detect host limits: %w", err)
	}
	log.Info("host limits", "summary", host.Describe(h))

	dc, err := docker.New(cfg.DockerHost)
	if err != nil {
		return err
	}
	defer dc.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ping, err := dc.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true})
	cancel()
	if err != nil {
		// The kubelet sees RuntimeReady false until Docker answers;
		// berth itself keeps serving.
		log.Warn("docker not reachable yet", "host", cfg.DockerHost, "error", err)
	} else {
		log.Info("docker", "host", cfg.DockerHost, "api_version", dc.ClientVersion(), "server_api_version", ping.APIVersion)
		if info, err := dc.Info(ctx, client.InfoOptions{}); err == nil {
			// Docker's systemd driver wants slice names, not paths.
			h.SystemdCgroup = info.Info.CgroupDriver == "systemd"
		}
		if caps, err := docker.GrantableCapabilities(ctx, dc, h.Capabilities); err != nil {
			log.Warn("cannot tell which capabilities docker grants; using the host's", "error", err)
		} else if len(caps) < len(h.Capabilities) {
			log.Info("capabilities the kernel has but docker cannot grant are left out",
				"missing", missingFrom(h.Capabilities, caps))
			h.Capabilities, h.AllCapabilities = caps, false
		}
	}

	net, err := network.New(network.Options{
		ConfDir: cfg.CNIConfDir, BinDirs: cfg.CNIBinDirs, CacheDir: filepath.Join(cfg.RootDir, "cni-cache"),
	})
	if err != nil {
		return err
	}
	store, err := sandbox.NewStore(filepath.Join(cfg.RootDir, "sandboxes"))
	if err != nil {
		return err
	}
	logs, err := containerlog.New(containerlog.Options{
		Docker: dc, StateDir: filepath.Join(cfg.RootDir, "containers"), Logger: log,
	})
	if err != nil {
		return err
	}
	defer logs.Close()
	vols, err := imagevolume.New(imagevolume.Options{
		Docker: dc, Dir: filepath.Join(cfg.RootDir, "image-volumes"), Logger: log,
	})
	if err != nil {
		return err
	}
	// The streaming server asks the CRI service where a pod's network is,
	// and the service hands out the streaming server's URLs.
	var svc *cri.Service
	stream, err := streaming.New(streaming.Options{
		Docker: dc, Addr: cfg.StreamingAddr, TLSCertFile: cfg.StreamingTLSCert, TLSKeyFile: cfg.StreamingTLSKey,
		Sandbox: func(ctx context.Context, id string) (int, bool, error) { return svc.SandboxNetNS(ctx, id) },
		Logger:  log,
	})
	if err != nil {
		return err
	}
	defer stream.Stop()
	go func() {
		if err := stream.Serve(); err != nil {
			log.Error("streaming server", "error", err)
		}
	}()
	svc, err = cri.New(cri.Options{
		Docker: dc, Network: net, Sandboxes: store, Host: h, PauseImage: cfg.PauseImage,
		HostResolvConf: cfg.ResolvConf, Logger: log,
		Streaming: streamer{stream, dc}, Logs: logs,
		DockerLog: dockerLog(cfg), ImageVolumes: vols,
	})
	if err != nil {
		return err
	}
	if err := svc.Reconcile(ctx); err != nil {
		// Serve anyway: what could not be cleaned now is retried at the
		// next start, and the kubelet still needs a runtime.
		log.Error("reconcile at start", "error", err)
	}
	if err := svc.ResumeLogs(ctx); err != nil {
		log.Error("resume container logs", "error", err)
	}
	srv, err := criserver.New(criserver.Options{Service: svc, Logger: log})
	if err != nil {
		return err
	}
	l, err := criserver.Listen(cfg.Listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("serving CRI", "listen", cfg.Listen, "version", cri.Version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.StopGrace)
	srv.Stop(cfg.StopGrace)
	return <-errc
}

func missingFrom(all, some []string) []string {
	var out []string
	for _, c := range all {
		if !slices.Contains(some, c) {
			out = append(out, c)
		}
	}
	return out
}

// streamer is the streaming server with synchronous exec beside it, as the
// CRI service wants them.
type streamer struct {
	*streaming.Server
	docker streaming.Docker
}

func (s streamer) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, int32, error) {
	return streaming.ExecSync(ctx, s.docker, containerID, cmd, timeout, streaming.ExecSyncOutputLimit)
}

// dockerLog is the Docker log config of containers: the daemon's default
// unless a bound is asked for.
func dockerLog(cfg config.Serve) container.LogConfig {
	if cfg.DockerLogMaxSize == "" {
		return container.LogConfig{}
	}
	return container.LogConfig{Type: "json-file", Config: map[string]string{
		"max-size": cfg.DockerLogMaxSize, "max-file": strconv.Itoa(cfg.DockerLogMaxFiles),
	}}
}
