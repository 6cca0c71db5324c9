package cri

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// inspected is a Docker container berth made, with its decoded labels.
type inspected struct {
	c      container.InspectResponse
	labels naming.Decoded
}

// inspectOwned inspects id (a full ID or a unique prefix, as Docker
// accepts) and checks berth made it as an object of type typ. Anything
// else is errdefs.ErrNotFound: berth never acts on containers it did not
// create.
func (s *Service) inspectOwned(ctx context.Context, id, typ string) (inspected, error) {
	if id == "" {
		field := "container_id"
		if typ == naming.TypeSandbox {
			field = "pod_sandbox_id"
		}
		return inspected{}, fmt.Errorf("%s: empty: %w", field, errdefs.ErrInvalidArgument)
	}
	res, err := s.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return inspected{}, fmt.Errorf("%s %q: %w", typ, id, err)
	}
	if res.Container.Config == nil {
		return inspected{}, fmt.Errorf("%s %q: %w", typ, id, errdefs.ErrNotFound)
	}
	d, err := naming.Decode(res.Container.Config.Labels)
	if err != nil || d.Type != typ {
		return inspected{}, fmt.Errorf("%s %q: %w", typ, id, errdefs.ErrNotFound)
	}
	return inspected{c: res.Container, labels: d}, nil
}

// listOwned lists the containers berth made of type typ, optionally only
// those of one sandbox.
func (s *Service) listOwned(ctx context.Context, typ, sandboxID string) ([]container.Summary, error) {
	f := client.Filters{}
	f.Add("label", naming.LabelManaged+"=true", naming.LabelType+"="+typ)
	if sandboxID != "" {
		f.Add("label", naming.LabelSandboxID+"="+sandboxID)
	}
	res, err := s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list %s containers: %w", typ, err)
	}
	return res.Items, nil
}

// nameInUse marks Docker's Conflict on create as what it means there: a
// container of that name exists, so the CRI object already exists.
func nameInUse(err error) error {
	if errdefs.IsConflict(err) {
		return errors.Join(errdefs.ErrAlreadyExists, err)
	}
	return err
}
