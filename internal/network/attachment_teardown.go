package network

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"
)

// Teardown detaches the sandbox a from the pod network (DEL). It releases
// what ADD allocated (addresses, host ports) even when the network
// namespace is gone (a.NetNS ""), and succeeds for a sandbox never set up.
//
// Each network the sandbox was added to is deleted with the config and
// arguments libcni cached at ADD, so a config changed or removed since
// then does not leak; if nothing is cached for the pod network (never set
// up, or the cache was lost) DEL runs with the current config and a's
// arguments. The namespace is always a.NetNS, never the cached path, which
// may since name another process's namespace: the caller passes "" once
// the namespace is gone.
func (m *Manager) Teardown(ctx context.Context, a Attachment) error {
	if a.ID == "" {
		return errors.New("tear down network: no sandbox id")
	}
	cached, err := m.cni.GetCachedAttachments(a.ID)
	if err != nil {
		return fmt.Errorf("tear down network for sandbox %s: read CNI cache: %w", a.ID, err)
	}

	type del struct {
		list *libcni.NetworkConfigList
		rt   *libcni.RuntimeConf
	}
	var pod []del
	for _, c := range cached {
		list, err := libcni.NetworkConfFromBytes(c.Config)
		if err != nil {
			// Unusable cache entry: the current config below stands in.
			continue
		}
		d := del{list, &libcni.RuntimeConf{
			ContainerID:    a.ID,
			NetNS:          a.NetNS,
			IfName:         c.IfName,
			Args:           c.CniArgs,
			CapabilityArgs: c.CapabilityArgs,
		}}
		if c.Network == "cni-loopback" {
			// Cached by berth versions that ran the loopback plugin:
			// "lo" goes with the namespace, nothing to release.
			continue
		}
		pod = append(pod, d)
	}
	// Without a cache entry, DEL with the current config, as the kubelet
	// does; if there is no config either, nothing was set up that DEL
	// could release.
	if cfg, err := loadConfig(m.confDir); err == nil && len(pod) == 0 {
		pod = append(pod, del{cfg.list, a.runtimeConf(a.ifName())})
	}
	// "lo" needs no teardown: it goes with the namespace.
	var errs []error
	for _, d := range pod {
		if err := m.del(ctx, d.list, d.rt); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
