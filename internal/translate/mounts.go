package translate

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mounts turns CRI mounts, then the sandbox's managed /etc files, into
// Docker binds. Binds (not HostConfig.Mounts) because Docker creates a
// missing host directory for a bind, as containerd does for CRI mounts.
// imageVolume resolves image volumes (ContainerParams.ImageVolume).
func (b *builder) mounts(mounts []*runtimeapi.Mount, etc []Mount, imageVolume func(string, *runtimeapi.Mount) (string, error)) error {
	targets := map[string]bool{}
	for i, m := range mounts {
		field := fmt.Sprintf("config.mounts[%d]", i)
		var bind string
		var err error
		if m.GetImage() != nil {
			bind, err = imageBind(field, m, imageVolume)
		} else {
			bind, err = criBind(field, m)
		}
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
	if m.GetImageSubPath() != "" {
		return "", invalidf(field+".image_sub_path", "set without image")
	}
	if err := checkUnsupported(field, m); err != nil {
		return "", err
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
	// Private label: the volume belongs to this container only, as the
	// kubelet means it (containerd relabels the same way).
	opts, err := bindOptions(field, m, opts, "Z")
	if err != nil {
		return "", err
	}
	return bindSpec(m.GetHostPath(), m.GetContainerPath(), opts), nil
}

// imageBind returns the bind of an image volume: a read-only bind of the
// image's root filesystem (at image_sub_path), which imageVolume makes and
// resolves once everything here has been checked.
func imageBind(field string, m *runtimeapi.Mount, imageVolume func(string, *runtimeapi.Mount) (string, error)) (string, error) {
	switch {
	case imageVolume == nil:
		return "", notImplementedf(field+".image", "image volumes are not supported")
	case m.GetImage().GetImage() == "":
		return "", invalidf(field+".image.image", "empty")
	case m.GetHostPath() != "":
		return "", invalidf(field+".host_path", "set with image: an image volume's source is the image")
	case !m.GetReadonly():
		// The tree is shared by every container using the image.
		return "", invalidf(field+".readonly", "false, but image volumes are read-only")
	}
	if err := checkUnsupported(field, m); err != nil {
		return "", err
	}
	if err := checkBindPath(field+".container_path", m.GetContainerPath()); err != nil {
		return "", err
	}
	// The kubelet refuses these too; checked again because the path is
	// joined to a host directory.
	sub := m.GetImageSubPath()
	if path.IsAbs(sub) {
		return "", invalidf(field+".image_sub_path", "%q must be relative", sub)
	}
	if slices.Contains(strings.Split(sub, "/"), "..") {
		return "", invalidf(field+".image_sub_path", "%q contains '..'", sub)
	}
	// Shared label: one tree serves every container using the image, so
	// a private label would take it from the others.
	opts, err := bindOptions(field, m, []string{"ro"}, "z")
	if err != nil {
		return "", err
	}
	host, err := imageVolume(field, m)
	if err != nil {
		return "", err
	}
	if !path.IsAbs(host) || strings.ContainsAny(host, ":,") {
		return "", invalidf(field+".image_sub_path", "%q resolves to %q, which a Docker bind cannot express", sub, host)
	}
	return bindSpec(host, m.GetContainerPath(), opts), nil
}

// checkUnsupported refuses what a Docker bind cannot do.
func checkUnsupported(field string, m *runtimeapi.Mount) error {
	switch {
	case m.GetRecursiveReadOnly():
		return notImplementedf(field+".recursive_read_only", "recursive read-only binds are not supported")
	case len(m.GetUidMappings()) > 0:
		return notImplementedf(field+".uidMappings", "Docker cannot ID-map a bind")
	case len(m.GetGidMappings()) > 0:
		return notImplementedf(field+".gidMappings", "Docker cannot ID-map a bind")
	case len(m.GetMountOptions()) > 0:
		// A bind's options in Docker are ro, propagation and relabeling
		// only; noexec, nodev and the like cannot be expressed.
		return notImplementedf(field+".mount_options", "Docker cannot apply mount options %q to a bind", m.GetMountOptions())
	}
	return nil
}

// bindOptions appends m's propagation and, if m asks for relabeling, the
// relabel option given to opts.
func bindOptions(field string, m *runtimeapi.Mount, opts []string, relabel string) ([]string, error) {
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		// Docker's default, rprivate.
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
	default:
		return nil, invalidf(field+".propagation", "unknown propagation %d", int32(m.GetPropagation()))
	}
	if m.GetSelinuxRelabel() {
		opts = append(opts, relabel)
	}
	return opts, nil
}

// bindSpec returns Docker's "host:container[:opts]".
func bindSpec(host, target string, opts []string) string {
	bind := host + ":" + target
	if len(opts) > 0 {
		bind += ":" + strings.Join(opts, ",")
	}
	return bind
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
