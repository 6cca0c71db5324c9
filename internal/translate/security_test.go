package translate

import (
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const scField = "config.linux.security_context"

func TestContainerUser(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "run_as_user",
			edit: func(p *ContainerParams) { csc(p).RunAsUser = i64(1000) },
			want: func(r *Result) { r.Config.User = "1000" },
		},
		{
			name: "run_as_user 0",
			edit: func(p *ContainerParams) { csc(p).RunAsUser = i64(0) },
			want: func(r *Result) { r.Config.User = "0" },
		},
		{
			name: "run_as_user and run_as_group",
			edit: func(p *ContainerParams) {
				csc(p).RunAsUser = i64(1000)
				csc(p).RunAsGroup = i64(3000)
			},
			want: func(r *Result) { r.Config.User = "1000:3000" },
		},
		{
			name: "run_as_username and run_as_group",
			edit: func(p *ContainerParams) {
				csc(p).RunAsUsername = "nobody"
				csc(p).RunAsGroup = i64(65534)
			},
			want: func(r *Result) { r.Config.User = "nobody:65534" },
		},
		{
			name: "max uid",
			edit: func(p *ContainerParams) { csc(p).RunAsUser = i64(2147483647) },
			want: func(r *Result) { r.Config.User = "2147483647" },
		},
		{
			name:     "uid too large",
			edit:     func(p *ContainerParams) { csc(p).RunAsUser = i64(4294967296) },
			errField: scField + ".run_as_user.value", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "negative uid",
			edit:     func(p *ContainerParams) { csc(p).RunAsUser = i64(-1) },
			errField: scField + ".run_as_user.value", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "gid too large",
			edit: func(p *ContainerParams) {
				csc(p).RunAsUser = i64(1)
				csc(p).RunAsGroup = i64(2147483648)
			},
			errField: scField + ".run_as_group.value", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "run_as_group alone",
			edit:     func(p *ContainerParams) { csc(p).RunAsGroup = i64(3000) },
			errField: scField + ".run_as_group", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "run_as_user and run_as_username",
			edit: func(p *ContainerParams) {
				csc(p).RunAsUser = i64(1)
				csc(p).RunAsUsername = "root"
			},
			errField: scField + ".run_as_username", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "username with colon",
			edit:     func(p *ContainerParams) { csc(p).RunAsUsername = "a:b" },
			errField: scField + ".run_as_username", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "supplemental groups",
			edit: func(p *ContainerParams) { csc(p).SupplementalGroups = []int64{0, 10, 2147483647} },
			want: func(r *Result) { r.HostConfig.GroupAdd = []string{"0", "10", "2147483647"} },
		},
		{
			name:     "supplemental group out of range",
			edit:     func(p *ContainerParams) { csc(p).SupplementalGroups = []int64{10, -5} },
			errField: scField + ".supplemental_groups[1]", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "supplemental groups policy Merge",
			edit: func(p *ContainerParams) {
				csc(p).SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Merge
				csc(p).SupplementalGroups = []int64{5}
			},
			want: func(r *Result) { r.HostConfig.GroupAdd = []string{"5"} },
		},
		{
			name:     "Strict without a way to read the image's passwd",
			edit:     func(p *ContainerParams) { csc(p).SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict },
			errField: scField + ".supplemental_groups_policy", errKind: errdefs.IsNotImplemented,
		},
		{
			name: "Strict names the user's primary group from the image",
			edit: func(p *ContainerParams) {
				strict(p)
				csc(p).RunAsUser = i64(1000)
				csc(p).SupplementalGroups = []int64{1234}
			},
			want: func(r *Result) { r.Config.User, r.HostConfig.GroupAdd = "1000:1000", []string{"1234"} },
		},
		{
			name: "Strict with run_as_group keeps it",
			edit: func(p *ContainerParams) {
				strict(p)
				csc(p).RunAsUser, csc(p).RunAsGroup = i64(1000), i64(3000)
			},
			want: func(r *Result) { r.Config.User = "1000:3000" },
		},
		{
			name: "Strict with the image's user by name",
			edit: func(p *ContainerParams) { strict(p); p.ImageUser = "www" },
			want: func(r *Result) { r.Config.User = "www:33" },
		},
		{
			name: "Strict with the image's user and group",
			edit: func(p *ContainerParams) { strict(p); p.ImageUser = "www:7" },
			want: func(r *Result) { r.Config.User = "www:7" },
		},
		{
			name: "Strict for root",
			edit: func(p *ContainerParams) { strict(p) },
			want: func(r *Result) { r.Config.User = "0:0" },
		},
		{
			name:     "Strict with a user the image does not know",
			edit:     func(p *ContainerParams) { strict(p); csc(p).RunAsUsername = "ghost" },
			errField: scField + ".supplemental_groups_policy", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "unknown supplemental groups policy",
			edit:     func(p *ContainerParams) { csc(p).SupplementalGroupsPolicy = 7 },
			errField: scField + ".supplemental_groups_policy", errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestContainerSecurityOptions(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "readonly rootfs",
			edit: func(p *ContainerParams) { csc(p).ReadonlyRootfs = true },
			want: func(r *Result) { r.HostConfig.ReadonlyRootfs = true },
		},
		{
			name: "no_new_privs",
			edit: func(p *ContainerParams) { csc(p).NoNewPrivs = true },
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined", "no-new-privileges"} },
		},
		{
			name: "selinux, all parts",
			edit: func(p *ContainerParams) {
				csc(p).SelinuxOptions = &runtimeapi.SELinuxOption{User: "system_u", Role: "system_r", Type: "container_t", Level: "s0:c1,c2"}
			},
			want: func(r *Result) {
				r.HostConfig.SecurityOpt = []string{
					"label=user:system_u", "label=role:system_r", "label=type:container_t", "label=level:s0:c1,c2",
					"seccomp=unconfined",
				}
			},
		},
		{
			name: "selinux, level only",
			edit: func(p *ContainerParams) { csc(p).SelinuxOptions = &runtimeapi.SELinuxOption{Level: "s0:c5"} },
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{"label=level:s0:c5", "seccomp=unconfined"} },
		},
		{
			name: "masked and readonly paths exactly as given",
			edit: func(p *ContainerParams) {
				csc(p).MaskedPaths = []string{"/proc/kcore", "/sys/firmware"}
				csc(p).ReadonlyPaths = []string{"/proc/sys"}
			},
			want: func(r *Result) {
				r.HostConfig.MaskedPaths = []string{"/proc/kcore", "/sys/firmware"}
				r.HostConfig.ReadonlyPaths = []string{"/proc/sys"}
			},
		},
		{
			name: "empty masked and readonly paths are none, not Docker's defaults",
			edit: func(p *ContainerParams) {
				csc(p).MaskedPaths = []string{}
				csc(p).ReadonlyPaths = nil
			},
		},
		{
			name:     "relative masked path",
			edit:     func(p *ContainerParams) { csc(p).MaskedPaths = []string{"/proc/kcore", "proc/keys"} },
			errField: scField + ".masked_paths[1]", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "relative readonly path",
			edit:     func(p *ContainerParams) { csc(p).ReadonlyPaths = []string{"proc"} },
			errField: scField + ".readonly_paths[0]", errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestContainerCapabilities(t *testing.T) {
	const capField = scField + ".capabilities"
	limited := limitedHost()
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "add and drop, any prefix and case",
			edit: func(p *ContainerParams) {
				ccaps(p).AddCapabilities = []string{"NET_ADMIN", "cap_sys_admin", "Net_Admin"}
				ccaps(p).DropCapabilities = []string{"CAP_CHOWN", "sys_resource"}
			},
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}
				r.HostConfig.CapDrop = []string{"CAP_CHOWN", "CAP_SYS_RESOURCE"}
			},
		},
		{
			name: "drop beats add",
			edit: func(p *ContainerParams) {
				ccaps(p).AddCapabilities = []string{"NET_ADMIN", "SYS_ADMIN"}
				ccaps(p).DropCapabilities = []string{"NET_ADMIN"}
			},
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"CAP_SYS_ADMIN"}
				r.HostConfig.CapDrop = []string{"CAP_NET_ADMIN"}
			},
		},
		{
			name: "add ALL on a full host is Docker's ALL",
			edit: func(p *ContainerParams) {
				ccaps(p).AddCapabilities = []string{"all", "NET_ADMIN"}
				ccaps(p).DropCapabilities = []string{"CHOWN"}
			},
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"ALL"}
				r.HostConfig.CapDrop = []string{"CAP_CHOWN"}
			},
		},
		{
			name: "add ALL on a limited host lists the host's",
			host: &limited,
			edit: func(p *ContainerParams) {
				ccaps(p).AddCapabilities = []string{"ALL"}
				ccaps(p).DropCapabilities = []string{"CAP_CHOWN"}
			},
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}
				r.HostConfig.CapDrop = []string{"CAP_CHOWN"}
			},
		},
		{
			name: "drop ALL, then explicit adds",
			edit: func(p *ContainerParams) {
				ccaps(p).AddCapabilities = []string{"NET_ADMIN", "CHOWN"}
				ccaps(p).DropCapabilities = []string{"ALL", "CHOWN"}
			},
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"CAP_NET_ADMIN"}
				r.HostConfig.CapDrop = []string{"ALL"}
			},
		},
		{
			name: "drop ALL beats add ALL",
			edit: func(p *ContainerParams) {
				ccaps(p).AddCapabilities = []string{"ALL"}
				ccaps(p).DropCapabilities = []string{"ALL"}
			},
			want: func(r *Result) { r.HostConfig.CapDrop = []string{"ALL"} },
		},
		{
			name: "add the host lacks is dropped with a warning",
			host: &limited,
			edit: func(p *ContainerParams) { ccaps(p).AddCapabilities = []string{"SYS_RESOURCE", "NET_ADMIN"} },
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"CAP_NET_ADMIN"}
				r.Warnings = []string{capField + ".add_capabilities: CAP_SYS_RESOURCE dropped: the host's bounding set lacks it"}
			},
		},
		{
			name: "drop the host lacks needs nothing",
			host: &limited,
			edit: func(p *ContainerParams) { ccaps(p).DropCapabilities = []string{"SYS_RESOURCE", "NET_ADMIN"} },
			want: func(r *Result) {
				r.HostConfig.CapDrop = []string{"CAP_NET_ADMIN"}
			},
		},
		{
			name:     "empty name",
			edit:     func(p *ContainerParams) { ccaps(p).AddCapabilities = []string{"CHOWN", ""} },
			errField: capField + ".add_capabilities[1]", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "bare prefix",
			edit:     func(p *ContainerParams) { ccaps(p).DropCapabilities = []string{"CAP_"} },
			errField: capField + ".drop_capabilities[0]", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "malformed name",
			edit:     func(p *ContainerParams) { ccaps(p).DropCapabilities = []string{"NET ADMIN"} },
			errField: capField + ".drop_capabilities[0]", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "ambient",
			edit:     func(p *ContainerParams) { ccaps(p).AddAmbientCapabilities = []string{"NET_BIND_SERVICE"} },
			errField: capField + ".add_ambient_capabilities", errKind: errdefs.IsNotImplemented,
		},
	})
}

func TestContainerPrivileged(t *testing.T) {
	limited := limitedHost()
	limitedAppArmor := limitedHost()
	limitedAppArmor.AppArmor = true
	emulated := func(r *Result) {
		r.HostConfig.CapAdd = []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"}
		r.HostConfig.SecurityOpt = []string{"seccomp=unconfined"}
		r.HostConfig.DeviceCgroupRules = []string{"a *:* rwm"}
		r.Warnings = []string{scField + ".privileged: emulated: the host's bounding set lacks some capabilities, " +
			"so the container gets the host's 3 capabilities, no seccomp or AppArmor confinement, " +
			"no masked or read-only paths and access to every device, " +
			"but the host's devices are not added to /dev and /sys stays read-only"}
	}
	// Everything privileged overrides, set to what would fail or confine.
	confined := func(p *ContainerParams) {
		privilegedSandbox(p)
		sc := csc(p)
		sc.Privileged = true
		sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
		sc.MaskedPaths = []string{"/proc/kcore"}
		sc.ReadonlyPaths = []string{"/proc/sys"}
		sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/missing.json"}
		sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p"}
	}
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "full host: Docker's privileged",
			edit: confined,
			want: func(r *Result) {
				r.HostConfig.Privileged = true
				// Docker's privileged is unconfined already.
				r.HostConfig.SecurityOpt = nil
			},
		},
		{
			name: "limited host: emulated",
			host: &limited,
			edit: confined,
			want: emulated,
		},
		{
			name: "limited host with AppArmor: emulated, apparmor unconfined",
			host: &limitedAppArmor,
			edit: confined,
			want: func(r *Result) {
				emulated(r)
				r.HostConfig.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
			},
		},
		{
			name: "selinux, readonly rootfs and no_new_privs still apply",
			edit: func(p *ContainerParams) {
				privilegedSandbox(p)
				sc := csc(p)
				sc.Privileged = true
				sc.ReadonlyRootfs = true
				sc.NoNewPrivs = true
				sc.SelinuxOptions = &runtimeapi.SELinuxOption{Type: "spc_t"}
			},
			want: func(r *Result) {
				r.HostConfig.Privileged = true
				r.HostConfig.ReadonlyRootfs = true
				r.HostConfig.SecurityOpt = []string{"label=type:spc_t", "no-new-privileges"}
			},
		},
		{
			name:     "in an unprivileged sandbox",
			edit:     func(p *ContainerParams) { csc(p).Privileged = true },
			errField: scField + ".privileged", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "ambient still refused",
			edit: func(p *ContainerParams) {
				privilegedSandbox(p)
				csc(p).Privileged = true
				ccaps(p).AddAmbientCapabilities = []string{"NET_RAW"}
			},
			errField: scField + ".capabilities.add_ambient_capabilities", errKind: errdefs.IsNotImplemented,
		},
	})
}

// strict asks for SupplementalGroupsPolicy Strict with an image whose
// /etc/passwd knows uid 1000 (group 1000) and www (group 33).
func strict(p *ContainerParams) {
	csc(p).SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
	p.PrimaryGroup = func(user string) (int64, error) {
		switch user {
		case "1000":
			return 1000, nil
		case "www":
			return 33, nil
		}
		return 0, fmt.Errorf("no user %q in /etc/passwd", user)
	}
}
