package cri

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxStopSeconds is the pause container's grace period: it exits on
// SIGTERM at once, so this only bounds a wedged one.
const sandboxStopSeconds = 2

// StopPodSandbox stops every container of the sandbox, tears its network
// down and stops the pause container. Stopping an unknown or stopped
// sandbox succeeds, as the CRI requires.
func (s *Service) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	id, running, err := s.resolveSandboxID(ctx, req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	unlock := s.locks.lock(id)
	defer unlock()
	if _, err := s.stopSandbox(ctx, id, running); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// resolveSandboxID finds the full ID of a sandbox from its ID or a prefix,
// through Docker or, when the pause container is gone, the checkpoints.
func (s *Service) resolveSandboxID(ctx context.Context, id string) (fullID string, pausePid int, err error) {
	if id == "" {
		return "", 0, fmt.Errorf("pod_sandbox_id: empty: %w", errdefs.ErrInvalidArgument)
	}
	sb, err := s.inspectOwned(ctx, id, naming.TypeSandbox)
	if err == nil {
		pid := 0
		if sb.c.State != nil && sb.c.State.Running {
			pid = sb.c.State.Pid
		}
		return sb.c.ID, pid, nil
	}
	if !errdefs.IsNotFound(err) {
		return "", 0, err
	}
	if _, cerr := s.sandboxes.Read(id); cerr == nil || errors.Is(cerr, errdefs.ErrDataLoss) {
		return id, 0, nil
	}
	return "", 0, err
}

// stopSandbox stops the sandbox's containers, tears its network down and
// stops the pause container; it returns the containers it listed, for
// RemovePodSandbox.
func (s *Service) stopSandbox(ctx context.Context, id string, pausePid int) ([]listed, error) {
	ctrs, err := s.list(ctx, listQuery{typ: naming.TypeContainer, sandboxID: id})
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		if c.State != container.StateRunning && c.State != container.StatePaused && c.State != container.StateRestarting {
			continue
		}
		// Containers of a stopping pod get no grace here: the kubelet
		// stops each container with its own grace period before this.
		timeout := 0
		if _, err := s.docker.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("stop container %s of sandbox %s: %w", c.ID, id, err)
		}
	}
	cp, err := s.sandboxes.Read(id)
	switch {
	case errdefs.IsNotFound(err):
		// Made by a RunPodSandbox cut short before its checkpoint: no
		// network was set up.
	case err != nil:
		s.log.WarnContext(ctx, "sandbox checkpoint unreadable; network teardown skipped", "sandbox", id, "error", err)
	case cp.HostNetwork, cp.NetworkDeleted && pausePid == 0:
		// Nothing to tear down, or torn down already with nothing
		// running that could have set it up again.
	default:
		// Not ready first: a crash during the teardown must not leave a
		// sandbox that says READY with an IP already released.
		if cp.NetworkReady {
			stored := cp
			stored.NetworkReady, stored.IPs = false, nil
			if err := s.sandboxes.Write(stored); err != nil {
				return nil, err
			}
		}
		// Never reuse the stored netns path: once the pause process is
		// gone its PID may belong to another process.
		cp.NetNS = ""
		if pausePid > 0 {
			cp.NetNS = fmt.Sprintf("/proc/%d/ns/net", pausePid)
		}
		if err := s.network.Teardown(ctx, attachment(cp)); err != nil {
			return nil, fmt.Errorf("tear down network of sandbox %s: %w", id, err)
		}
		cp.NetworkReady, cp.IPs, cp.NetworkDeleted = false, nil, true
		if err := s.sandboxes.Write(cp); err != nil {
			return nil, err
		}
	}
	if pausePid == 0 {
		return ctrs, nil
	}
	timeout := sandboxStopSeconds
	if _, err := s.docker.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("stop sandbox container %s: %w", id, err)
	}
	return ctrs, nil
}

// RemovePodSandbox removes the sandbox and every container in it, stopping
// them first if needed. Removing an unknown sandbox succeeds.
func (s *Service) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	id, pid, err := s.resolveSandboxID(ctx, req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	unlock := s.locks.lock(id)
	defer unlock()
	ctrs, err := s.stopSandbox(ctx, id, pid)
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		if err := s.removeContainer(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	if _, err := s.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("remove sandbox container %s: %w", id, err)
	}
	if err := s.sandboxes.Remove(id); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
