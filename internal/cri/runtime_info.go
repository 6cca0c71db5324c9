package cri

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version is berth's own version, reported as the runtime version's suffix.
const Version = "0.1.0"

const (
	runtimeName       = "docker"
	runtimeAPIVersion = "v1"
)

// Version reports the Docker Engine behind berth, as dockershim and
// cri-dockerd did: tools key behaviour on the runtime name "docker".
func (s *Service) Version(ctx context.Context, _ *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	v, err := s.docker.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker version: %w", err)
	}
	return &runtimeapi.VersionResponse{
		Version:           Version,
		RuntimeName:       runtimeName,
		RuntimeVersion:    v.Version,
		RuntimeApiVersion: runtimeAPIVersion,
	}, nil
}

// Status reports RuntimeReady from a Docker ping and NetworkReady from the
// CNI config.
func (s *Service) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if _, err := s.docker.Ping(ctx, client.PingOptions{}); err != nil {
		runtimeReady.Status = false
		runtimeReady.Reason = "DockerDaemonNotReady"
		runtimeReady.Message = err.Error()
	}
	networkReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.network.Status(); err != nil {
		networkReady.Status = false
		networkReady.Reason = "NetworkPluginNotReady"
		networkReady.Message = err.Error()
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, networkReady}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{
			Name:     "",
			Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: false, UserNamespaces: false},
		}},
		// Strict names the user's primary group, read from the image's
		// /etc/passwd with the image-volume store's helper containers,
		// which keeps Docker from adding the image's /etc/group
		// memberships; ContainerStatus.user reports what the process got.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: s.imageVolumes != nil},
	}
	if req.GetVerbose() {
		resp.Info = map[string]string{"config": s.describe()}
	}
	return resp, nil
}

func (s *Service) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"pauseImage":%q,"hostCapabilities":%d,"minOOMScoreAdj":%d,"appArmor":%t}`,
		s.pauseImage, len(s.host.Capabilities), s.host.MinOOMScoreAdj, s.host.AppArmor)
	return b.String()
}

// RuntimeConfig reports the cgroup driver Docker uses, which the kubelet must
// match.
func (s *Service) RuntimeConfig(ctx context.Context, _ *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	info, err := s.docker.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker info: %w", err)
	}
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if info.Info.CgroupDriver == "systemd" {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// UpdateRuntimeConfig records the pod CIDR. The CNI config decides
// addresses, so it is informational (reported by Status verbose).
func (s *Service) UpdateRuntimeConfig(_ context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	s.mu.Lock()
	s.podCIDR = cidr
	s.mu.Unlock()
	if cidr != "" {
		s.log.Info("pod CIDR updated", "cidr", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
