package cri

import (
	"context"
	"fmt"

	"github.com/berth-project/berth/internal/naming"
	"github.com/berth-project/berth/internal/translate"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources applies new CPU and memory limits to a
// container.
func (s *Service) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.inspectOwned(ctx, req.GetContainerId(), naming.TypeContainer)
	if err != nil {
		return nil, err
	}
	res, warnings, err := translate.Resources(req.GetLinux(), s.host)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		s.log.WarnContext(ctx, "resources not honoured exactly", "container", c.c.ID, "warning", w)
	}
	if _, err := s.docker.ContainerUpdate(ctx, c.c.ID, client.ContainerUpdateOptions{Resources: &res}); err != nil {
		return nil, fmt.Errorf("update container %s: %w", c.c.ID, err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}
