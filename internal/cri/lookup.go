package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	return s.inspectOwnedWith(ctx, id, typ, client.ContainerInspectOptions{})
}

// inspectOwnedWith is inspectOwned with Docker's inspect options (the
// writable layer's size).
func (s *Service) inspectOwnedWith(ctx context.Context, id, typ string, opts client.ContainerInspectOptions) (inspected, error) {
	if id == "" {
		field := "container_id"
		if typ == naming.TypeSandbox {
			field = "pod_sandbox_id"
		}
		return inspected{}, fmt.Errorf("%s: empty: %w", field, errdefs.ErrInvalidArgument)
	}
	res, err := s.docker.ContainerInspect(ctx, id, opts)
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

// listQuery selects the containers berth made: of one type, optionally of
// one sandbox (a full ID, which Docker filters), by ID prefix and CRI label
// selector (which berth filters), with sizes when asked (costly).
type listQuery struct {
	typ       string
	sandboxID string
	idPrefix  string
	selector  map[string]string
	sized     bool
}

// listed is a container of a list with its decoded labels.
type listed struct {
	container.Summary
	labels naming.Decoded
}

// list lists what q selects.
func (s *Service) list(ctx context.Context, q listQuery) ([]listed, error) {
	f := client.Filters{}
	f.Add("label", naming.LabelManaged+"=true", naming.LabelType+"="+q.typ)
	if q.sandboxID != "" {
		f.Add("label", naming.LabelSandboxID+"="+q.sandboxID)
	}
	res, err := s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Size: q.sized, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list %s containers: %w", q.typ, err)
	}
	out := make([]listed, 0, len(res.Items))
	for _, it := range res.Items {
		if !strings.HasPrefix(it.ID, q.idPrefix) {
			continue
		}
		d, err := naming.Decode(it.Labels)
		if err != nil || !matchLabels(d.Labels, q.selector) {
			continue
		}
		out = append(out, listed{it, d})
	}
	return out, nil
}

// nameInUse marks Docker's Conflict on create as what it means there: a
// container of that name exists, so the CRI object already exists.
func nameInUse(err error) error {
	if errdefs.IsConflict(err) {
		return errors.Join(errdefs.ErrAlreadyExists, err)
	}
	return err
}

// createTimeout bounds a container create; createGrace is how long one
// whose caller has gone may still answer before berth stops waiting and
// cleans up by name.
const (
	createTimeout = 2 * time.Minute
	createGrace   = 2 * time.Second
)

// create makes a Docker container so that no container outlives a failed
// call. Docker carries out a create it has received even when the client
// goes away, so a create cut short by the caller's deadline would leave a
// container nobody knows of. The create runs on a context of its own; if
// the caller goes first, the call fails at once and the container is
// removed in the background as soon as Docker answers (or, after a grace,
// found by its name and this call's stamp). A create whose answer is an
// error other than a name in use is swept the same way, since a broken
// connection does not say whether Docker acted.
func (s *Service) create(ctx context.Context, opts client.ContainerCreateOptions) (string, error) {
	type result struct {
		id  string
		err error
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	done := make(chan result, 1)
	go func() {
		res, err := s.docker.ContainerCreate(cctx, opts)
		done <- result{res.ID, err}
	}()
	select {
	case r := <-done:
		defer cancel()
		if r.err == nil {
			return r.id, nil
		}
		if errdefs.IsConflict(r.err) {
			return "", nameInUse(r.err)
		}
		s.removeCreated(cctx, "", opts)
		return "", r.err
	case <-ctx.Done():
		go func() {
			defer cancel()
			var r result
			select {
			case r = <-done:
			case <-time.After(createGrace):
				cancel()
				r = <-done
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer rcancel()
			s.removeCreated(rctx, r.id, opts)
		}()
		return "", ctx.Err()
	}
}

// removeCreated removes the container a create may have made: by id when
// known, else by name if it carries the create's stamp (so another call's
// container of the same name is never touched).
func (s *Service) removeCreated(ctx context.Context, id string, opts client.ContainerCreateOptions) {
	if id == "" {
		got, err := s.docker.ContainerInspect(ctx, opts.Name, client.ContainerInspectOptions{})
		if err != nil || got.Container.Config == nil ||
			got.Container.Config.Labels[naming.LabelCreatedAt] != opts.Config.Labels[naming.LabelCreatedAt] {
			return
		}
		id = got.Container.ID
	}
	if _, err := s.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		s.log.ErrorContext(ctx, "remove container of a failed create", "name", opts.Name, "error", err)
	}
}
