package cri

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/naming"
	"github.com/containerd/errdefs"
)

// Reconcile cleans up what a crash left half made, once at start. A
// sandbox directory whose pause container is gone can no longer be seen
// through the CRI (ListPodSandbox reads Docker), so nobody would ever stop
// it: its network is torn down and the directory removed here. Sandboxes
// whose container exists are left to the kubelet, which sees them NOTREADY
// and stops and removes them. Image volumes are reconciled too (see
// reconcileImageVolumes).
func (s *Service) Reconcile(ctx context.Context) error {
	ids, err := s.sandboxes.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		_, err := s.inspectOwned(ctx, id, naming.TypeSandbox)
		if err == nil {
			continue
		}
		if !errdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		unlock := s.locks.lock(id)
		cp, err := s.sandboxes.Read(id)
		if err == nil && !cp.HostNetwork {
			cp.NetNS = ""
			if err := s.network.Teardown(ctx, attachment(cp)); err != nil {
				errs = append(errs, fmt.Errorf("orphaned sandbox %s: %w", id, err))
				unlock()
				continue
			}
		}
		if err := s.sandboxes.Remove(id); err != nil {
			errs = append(errs, err)
		}
		unlock()
		s.log.InfoContext(ctx, "cleaned up orphaned sandbox", "sandbox", id)
	}
	if err := s.reconcileImageVolumes(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
