package cri

import (
	"context"
	"fmt"
	"math"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer starts a created container.
func (s *Service) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.inspectOwned(ctx, req.GetContainerId(), naming.TypeContainer)
	if err != nil {
		return nil, err
	}
	if c.c.State != nil && (c.c.State.Running || parseTime(c.c.State.StartedAt) != 0) {
		return nil, fmt.Errorf("container %s was already started: %w", c.c.ID, errdefs.ErrFailedPrecondition)
	}
	logPath := c.labels.LogPath
	if s.logs != nil && logPath != "" {
		// The file exists when StartContainer returns, as the kubelet
		// expects.
		if err := s.logs.Prepare(logPath); err != nil {
			return nil, fmt.Errorf("log of container %s: %w", c.c.ID, err)
		}
	}
	if _, err := s.docker.ContainerStart(ctx, c.c.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.c.ID, err)
	}
	if s.logs != nil && logPath != "" {
		// The container runs: failing the call now would leave it
		// running unseen. Its file exists; say loudly it stays empty.
		if err := s.logs.Start(ctx, c.c.ID, logPath); err != nil {
			s.log.ErrorContext(ctx, "container log not copied", "container", c.c.ID, "path", logPath, "error", err)
		}
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer sends the stop signal, waits up to timeout seconds, then
// kills. Stopping an unknown or exited container succeeds.
func (s *Service) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.inspectOwned(ctx, req.GetContainerId(), naming.TypeContainer)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	timeout := int(min(max(req.GetTimeout(), 0), math.MaxInt32))
	if _, err := s.docker.ContainerStop(ctx, c.c.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("stop container %s: %w", c.c.ID, err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, killing it if it runs. Removing an
// unknown container succeeds.
func (s *Service) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.inspectOwned(ctx, req.GetContainerId(), naming.TypeContainer)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c.c.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Service) removeContainer(ctx context.Context, id string) error {
	if s.logs != nil {
		if err := s.logs.Forget(id); err != nil {
			return err
		}
	}
	_, err := s.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !errdefs.IsNotFound(err) {
		// Two removes racing: Docker answers the loser with a conflict
		// ("removal already in progress"); the container is going away.
		if errdefs.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}
