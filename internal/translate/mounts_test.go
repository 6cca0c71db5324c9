package translate

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func withMounts(m ...*runtimeapi.Mount) func(*ContainerParams) {
	return func(p *ContainerParams) { p.Config.Mounts = m }
}

func TestContainerMounts(t *testing.T) {
	binds := func(b ...string) func(*Result) {
		return func(r *Result) { r.HostConfig.Binds = b }
	}
	bad := func(field string, kind func(error) bool, m *runtimeapi.Mount) tcase[ContainerParams] {
		return tcase[ContainerParams]{
			name: field + " " + m.GetHostPath() + " -> " + m.GetContainerPath(), edit: withMounts(&runtimeapi.Mount{ContainerPath: "/ok", HostPath: "/ok"}, m),
			errField: "config.mounts[1]." + field, errKind: kind,
		}
	}
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "plain",
			edit: withMounts(&runtimeapi.Mount{ContainerPath: "/data", HostPath: "/var/lib/kubelet/pods/1/volumes/data"}),
			want: binds("/var/lib/kubelet/pods/1/volumes/data:/data"),
		},
		{
			name: "read-only",
			edit: withMounts(&runtimeapi.Mount{ContainerPath: "/data", HostPath: "/h", Readonly: true}),
			want: binds("/h:/data:ro"),
		},
		{
			name: "propagation private is Docker's default",
			edit: withMounts(&runtimeapi.Mount{ContainerPath: "/data", HostPath: "/h", Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE}),
			want: binds("/h:/data"),
		},
		{
			name: "propagation host to container",
			edit: withMounts(&runtimeapi.Mount{ContainerPath: "/data", HostPath: "/h", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}),
			want: binds("/h:/data:rslave"),
		},
		{
			name: "propagation bidirectional, read-only, relabel",
			edit: withMounts(&runtimeapi.Mount{
				ContainerPath: "/data", HostPath: "/h", Readonly: true, SelinuxRelabel: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL,
			}),
			want: binds("/h:/data:ro,rshared,Z"),
		},
		{
			name: "selinux relabel",
			edit: withMounts(&runtimeapi.Mount{ContainerPath: "/data", HostPath: "/h", SelinuxRelabel: true}),
			want: binds("/h:/data:Z"),
		},
		bad("container_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "data", HostPath: "/h"}),
		bad("container_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "", HostPath: "/h"}),
		bad("container_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/a/../etc", HostPath: "/h"}),
		bad("container_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/a:b", HostPath: "/h"}),
		bad("host_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "h"}),
		bad("host_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/var/.."}),
		bad("host_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/a,b"}),
		bad("propagation", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/h", Propagation: 9}),
		bad("image", errdefs.IsNotImplemented, &runtimeapi.Mount{ContainerPath: "/c", Image: &runtimeapi.ImageSpec{Image: "sha256:def"}}),
		bad("image_sub_path", errdefs.IsInvalidArgument, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/h", ImageSubPath: "sub"}),
		bad("recursive_read_only", errdefs.IsNotImplemented, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/h", Readonly: true, RecursiveReadOnly: true}),
		bad("uidMappings", errdefs.IsNotImplemented, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/h", UidMappings: []*runtimeapi.IDMapping{{Length: 1}}}),
		bad("gidMappings", errdefs.IsNotImplemented, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/h", GidMappings: []*runtimeapi.IDMapping{{Length: 1}}}),
		bad("mount_options", errdefs.IsNotImplemented, &runtimeapi.Mount{ContainerPath: "/c", HostPath: "/h", MountOptions: []string{"noexec"}}),
	})
}

func TestContainerEtcMounts(t *testing.T) {
	etc := func(p *ContainerParams) {
		p.EtcMounts = []Mount{
			{HostPath: "/run/berth/sb1/hosts", ContainerPath: "/etc/hosts"},
			{HostPath: "/run/berth/sb1/resolv.conf", ContainerPath: "/etc/resolv.conf", ReadOnly: true},
		}
	}
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "added after the CRI mounts",
			edit: func(p *ContainerParams) {
				etc(p)
				withMounts(&runtimeapi.Mount{ContainerPath: "/data", HostPath: "/h"})(p)
			},
			want: func(r *Result) {
				r.HostConfig.Binds = []string{"/h:/data", "/run/berth/sb1/hosts:/etc/hosts", "/run/berth/sb1/resolv.conf:/etc/resolv.conf:ro"}
			},
		},
		{
			name: "a CRI mount of the same path wins",
			edit: func(p *ContainerParams) {
				etc(p)
				withMounts(&runtimeapi.Mount{ContainerPath: "/etc/hosts/", HostPath: "/my/hosts"})(p)
			},
			want: func(r *Result) {
				r.HostConfig.Binds = []string{"/my/hosts:/etc/hosts/", "/run/berth/sb1/resolv.conf:/etc/resolv.conf:ro"}
			},
		},
	})
}

func TestContainerDevices(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "permissions default to rwm",
			edit: func(p *ContainerParams) {
				p.Config.Devices = []*runtimeapi.Device{
					{ContainerPath: "/dev/fuse", HostPath: "/dev/fuse"},
					{ContainerPath: "/dev/xvda", HostPath: "/dev/sda", Permissions: "r"},
				}
			},
			want: func(r *Result) {
				r.HostConfig.Devices = []container.DeviceMapping{
					{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
					{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"},
				}
			},
		},
		{
			name: "bad permissions",
			edit: func(p *ContainerParams) {
				p.Config.Devices = []*runtimeapi.Device{{ContainerPath: "/dev/a", HostPath: "/dev/a", Permissions: "rx"}}
			},
			errField: "config.devices[0].permissions", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "relative container path",
			edit: func(p *ContainerParams) {
				p.Config.Devices = []*runtimeapi.Device{{ContainerPath: "dev/a", HostPath: "/dev/a"}}
			},
			errField: "config.devices[0].container_path", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "relative host path",
			edit: func(p *ContainerParams) {
				p.Config.Devices = []*runtimeapi.Device{{ContainerPath: "/dev/a", HostPath: ""}}
			},
			errField: "config.devices[0].host_path", errKind: errdefs.IsInvalidArgument,
		},
	})
}
