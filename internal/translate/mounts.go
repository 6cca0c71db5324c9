package translate

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mounts turns CRI mounts, then the sandbox's managed /etc files, into
// Docker binds. Binds (not HostConfig.Mounts) because Docker creates a
// missing host directory for a bind, as containerd does for CRI mounts.
func (b *builder) mounts(mounts []*runtimeapi.Mount, etc []Mount) error {
	targets := map[string]bool{}
	for i, m := range mounts {
		bind, err := criBind(fmt.Sprintf("config.mounts[%d]", i), m)
		if err != nil {
			return err
		}
		b.hostCfg.Binds = append(b.hostCfg.Binds, bind)
		targets[path.Clean(m.GetContainerPath())] = true
	}
	for _, m := range etc {
		// The pod's own file wins: a user may mount a ConfigMap over
		// /etc/hosts, and Docker refuses two mounts on one target.
		if targets[path.Clean(m.ContainerPath)] {
			continue
		}
		if err := checkEtcMount(m); err != nil {
			return err
		}
		bind := m.HostPath + ":" + m.ContainerPath
		if m.ReadOnly {
			bind += ":ro"
		}
		b.hostCfg.Binds = append(b.hostCfg.Binds, bind)
	}
	return nil
}

// criBind returns the "host:container[:opts]" bind for m.
func criBind(field string, m *runtimeapi.Mount) (string, error) {
	switch {
	case m.GetImage() != nil:
		return "", notImplementedf(field+".image", "image volumes are not supported")
	case m.GetImageSubPath() != "":
		return "", invalidf(field+".image_sub_path", "set without image")
	case m.GetRecursiveReadOnly():
		return "", notImplementedf(field+".recursive_read_only", "recursive read-only binds are not supported")
	case len(m.GetUidMappings()) > 0:
		return "", notImplementedf(field+".uidMappings", "Docker cannot ID-map a bind")
	case len(m.GetGidMappings()) > 0:
		return "", notImplementedf(field+".gidMappings", "Docker cannot ID-map a bind")
	case len(m.GetMountOptions()) > 0:
		// A bind's options in Docker are ro, propagation and relabeling
		// only; noexec, nodev and the like cannot be expressed.
		return "", notImplementedf(field+".mount_options", "Docker cannot apply mount options %q to a bind", m.GetMountOptions())
	}
	for _, p := range []struct{ name, value string }{
		{"container_path", m.GetContainerPath()},
		{"host_path", m.GetHostPath()},
	} {
		if err := checkBindPath(field+"."+p.name, p.value); err != nil {
			return "", err
		}
	}

	var opts []string
	if m.GetReadonly() {
		opts = append(opts, "ro")
	}
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		// Docker's default, rprivate.
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
	default:
		return "", invalidf(field+".propagation", "unknown propagation %d", int32(m.GetPropagation()))
	}
	if m.GetSelinuxRelabel() {
		// Private label: the volume belongs to this container only, as
		// the kubelet means it (containerd relabels the same way).
		opts = append(opts, "Z")
	}

	bind := m.GetHostPath() + ":" + m.GetContainerPath()
	if len(opts) > 0 {
		bind += ":" + strings.Join(opts, ",")
	}
	return bind, nil
}

// checkBindPath checks a path for a bind spec, whose ':' and ','
// separators the path cannot contain.
func checkBindPath(field, p string) error {
	if err := checkAbs(field, p); err != nil {
		return err
	}
	if strings.ContainsAny(p, ":,") {
		return invalidf(field, "%q contains ':' or ',', which a Docker bind cannot express", p)
	}
	return nil
}

// checkEtcMount checks berth's own paths: a bad one is berth's bug, not
// the request's, so the error is no InvalidArgument.
func checkEtcMount(m Mount) error {
	for _, p := range []string{m.HostPath, m.ContainerPath} {
		if !path.IsAbs(p) || strings.ContainsAny(p, ":,") {
			return fmt.Errorf("translate: etc mount %q -> %q: not expressible as a Docker bind", m.HostPath, m.ContainerPath)
		}
	}
	return nil
}

// devices turns CRI devices into Docker device mappings.
func devices(in []*runtimeapi.Device) ([]container.DeviceMapping, error) {
	var out []container.DeviceMapping
	for i, d := range in {
		field := indexed("config.devices", i)
		if err := checkAbs(field+".container_path", d.GetContainerPath()); err != nil {
			return nil, err
		}
		if err := checkAbs(field+".host_path", d.GetHostPath()); err != nil {
			return nil, err
		}
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, invalidf(field+".permissions", "%q is not a subset of \"rwm\"", d.GetPermissions())
		}
		out = append(out, container.DeviceMapping{
			PathOnHost:        d.GetHostPath(),
			PathInContainer:   d.GetContainerPath(),
			CgroupPermissions: perms,
		})
	}
	return out, nil
}

// cdiDevices asks Docker's CDI driver for the named devices, as
// `docker run --device vendor.com/class=name` does.
func cdiDevices(in []*runtimeapi.CDIDevice) ([]container.DeviceRequest, error) {
	if len(in) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(in))
	for i, d := range in {
		name := d.GetName()
		vendorClass, device, ok := strings.Cut(name, "=")
		if !ok || device == "" || !strings.Contains(vendorClass, "/") {
			return nil, invalidf(indexed("config.CDI_devices", i)+".name", "%q is not a qualified CDI device name (vendor/class=name)", name)
		}
		ids = append(ids, name)
	}
	return []container.DeviceRequest{{Driver: "cdi", DeviceIDs: ids}}, nil
}
