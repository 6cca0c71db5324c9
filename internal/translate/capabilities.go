package translate

import (
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const capabilitiesField = securityContextField + ".capabilities"

// capabilities turns CRI's add/drop lists into Docker's CapAdd/CapDrop with
// containerd's meaning, which differs from Docker's in two ways: an
// explicit drop beats an explicit add, and a drop of ALL beats an add of
// ALL. Docker applies adds after drops and lets add ALL win, so adds are
// filtered by drops here and ALL in drop suppresses ALL in add.
func (b *builder) capabilities(c *runtimeapi.Capability, privileged bool) error {
	if len(c.GetAddAmbientCapabilities()) > 0 {
		return notImplementedf(capabilitiesField+".add_ambient_capabilities", "Docker cannot set ambient capabilities")
	}
	if privileged {
		// Privileged gets every capability; add and drop do not apply.
		return nil
	}
	adds, addAll, err := capabilityNames(capabilitiesField+".add_capabilities", c.GetAddCapabilities())
	if err != nil {
		return err
	}
	drops, dropAll, err := capabilityNames(capabilitiesField+".drop_capabilities", c.GetDropCapabilities())
	if err != nil {
		return err
	}

	var capAdd []string
	switch {
	case dropAll:
		b.hostCfg.CapDrop = []string{"ALL"}
	case addAll && b.host.AllCapabilities:
		capAdd = []string{"ALL"}
	case addAll:
		// Docker's "ALL" means every capability Docker knows, and fails
		// where the bounding set lacks one: list the host's instead.
		capAdd = slices.Clone(b.host.Capabilities)
	}
	for _, name := range adds {
		if !b.hostHas(name) {
			// A pod the host can run must start: it runs without the
			// capability, and the kubelet's user learns why from the log.
			b.warnf(capabilitiesField+".add_capabilities", "%s dropped: the host's bounding set lacks it", name)
			continue
		}
		if !slices.Contains(capAdd, name) && !slices.Contains(capAdd, "ALL") {
			capAdd = append(capAdd, name)
		}
	}
	capAdd = slices.DeleteFunc(capAdd, func(name string) bool { return slices.Contains(drops, name) })

	if !dropAll {
		for _, name := range drops {
			// Without the capability on the host, the container lacks it
			// anyway; and Docker rejects names its kernel does not know.
			if b.hostHas(name) {
				b.hostCfg.CapDrop = append(b.hostCfg.CapDrop, name)
			}
		}
	}
	if len(capAdd) > 0 {
		b.hostCfg.CapAdd = capAdd
	}
	return nil
}

// hostHas reports whether the container can be given capability name.
// With every capability, the name is Docker's to judge.
func (b *builder) hostHas(name string) bool {
	return b.host.AllCapabilities || slices.Contains(b.host.Capabilities, name)
}

// capabilityNames returns names as "CAP_X" without duplicates, and whether
// they include ALL. CRI leaves prefix and case open: the kubelet sends
// "NET_ADMIN", other clients "CAP_net_admin".
func capabilityNames(field string, names []string) (caps []string, all bool, err error) {
	for i, n := range names {
		upper := strings.ToUpper(n)
		if upper == "ALL" {
			all = true
			continue
		}
		name := upper
		if !strings.HasPrefix(name, "CAP_") {
			name = "CAP_" + name
		}
		if len(name) == len("CAP_") || strings.TrimLeft(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			return nil, false, invalidf(indexed(field, i), "%q is not a capability name", n)
		}
		if !slices.Contains(caps, name) {
			caps = append(caps, name)
		}
	}
	return caps, all, nil
}
