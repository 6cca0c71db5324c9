package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/naming"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/berth-project/berth/internal/translate"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateContainer creates a container in a sandbox. It joins the sandbox's
// namespaces through the pause container and mounts the sandbox's /etc
// files.
func (s *Service) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	if cfg == nil {
		return nil, fmt.Errorf("config: missing: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetMetadata().GetName() == "" {
		return nil, fmt.Errorf("config.metadata.name: empty: %w", errdefs.ErrInvalidArgument)
	}
	if strings.ContainsAny(cfg.GetMetadata().GetName(), "_/") {
		return nil, fmt.Errorf("config.metadata.name: %q may not contain '_' or '/': %w", cfg.GetMetadata().GetName(), errdefs.ErrInvalidArgument)
	}
	if req.GetSandboxConfig() == nil {
		return nil, fmt.Errorf("sandbox_config: missing: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("config.image.image: empty: %w", errdefs.ErrInvalidArgument)
	}
	logPath, err := containerLogPath(req.GetSandboxConfig().GetLogDirectory(), cfg.GetLogPath())
	if err != nil {
		return nil, err
	}
	sb, err := s.inspectOwned(ctx, req.GetPodSandboxId(), naming.TypeSandbox)
	if err != nil {
		return nil, err
	}
	if sb.c.State == nil || !sb.c.State.Running {
		return nil, fmt.Errorf("sandbox %s is not running: %w", sb.c.ID, errdefs.ErrFailedPrecondition)
	}
	sbMeta, err := sb.labels.SandboxMetadata()
	if err != nil {
		return nil, err
	}
	img, err := s.docker.ImageInspect(ctx, cfg.GetImage().GetImage())
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", cfg.GetImage().GetImage(), err)
	}
	labels, err := naming.ContainerLabels(sb.c.ID, cfg, req.GetSandboxConfig(), logPath, s.now().UnixNano())
	if err != nil {
		return nil, err
	}
	etc, err := s.sandboxes.EtcPaths(sb.c.ID)
	if err != nil {
		return nil, err
	}
	// The image volumes' trees stay pinned until the container exists.
	vols := s.newImageVolumeSet(ctx)
	defer vols.release()
	tr, err := translate.Container(translate.ContainerParams{
		Config:        cfg,
		SandboxConfig: req.GetSandboxConfig(),
		SandboxID:     sb.c.ID,
		Image:         img.ID,
		Labels:        labels,
		EtcMounts: []translate.Mount{
			{HostPath: etc[sandbox.ResolvConf], ContainerPath: "/etc/resolv.conf"},
			{HostPath: etc[sandbox.Hosts], ContainerPath: "/etc/hosts"},
			{HostPath: etc[sandbox.Hostname], ContainerPath: "/etc/hostname"},
		},
		ReadFile:     readProfile,
		ImageVolume:  vols.resolver(),
		ImageUser:    imageUser(img),
		PrimaryGroup: s.primaryGroup(ctx, img.ID),
		DockerLog:    s.dockerLog,
	}, s.host)
	if err != nil {
		return nil, err
	}
	if err := naming.PutImageVolumes(tr.Config.Labels, vols.vols); err != nil {
		return nil, err
	}
	for _, w := range tr.Warnings {
		s.log.WarnContext(ctx, "container config not honoured exactly", "container", cfg.GetMetadata().GetName(), "warning", w)
	}
	name := naming.ContainerName(cfg.GetMetadata(), sbMeta)
	id, err := s.create(ctx, client.ContainerCreateOptions{Name: name, Config: tr.Config, HostConfig: tr.HostConfig})
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// containerLogPath joins the sandbox's log directory and the container's
// relative log path, refusing anything that could escape the directory.
func containerLogPath(dir, rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if dir == "" {
		return "", fmt.Errorf("sandbox_config.log_directory: empty while config.log_path is set: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkAbsClean("sandbox_config.log_directory", dir); err != nil {
		return "", err
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("config.log_path: %q must be relative: %w", rel, errdefs.ErrInvalidArgument)
	}
	for _, el := range strings.Split(rel, "/") {
		if el == ".." {
			return "", fmt.Errorf("config.log_path: %q contains '..': %w", rel, errdefs.ErrInvalidArgument)
		}
	}
	return filepath.Join(dir, rel), nil
}

// readProfile reads a Localhost seccomp profile. Only regular files are
// read, so a request cannot make berth block on a FIFO or a device.
func readProfile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return os.ReadFile(path)
}
