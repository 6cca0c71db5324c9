package translate

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func baseSandbox() SandboxParams {
	return SandboxParams{
		Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "uid1"},
			Hostname: "pod-host",
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/pod1"},
			// Not Docker's: CNI and berth handle them.
			PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080}},
			DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}},
		},
		Image:  "registry.k8s.io/pause:3.10",
		Labels: map[string]string{"io.berth.kind": "sandbox"},
	}
}

// baseSandboxResult: pod network and IPC of its own, networking left to
// CNI, hard to OOM-kill.
func baseSandboxResult() Result {
	return Result{
		Config: &container.Config{
			Image:           "registry.k8s.io/pause:3.10",
			Labels:          map[string]string{"io.berth.kind": "sandbox"},
			Hostname:        "pod-host",
			NetworkDisabled: true,
			Healthcheck:     noHealthcheck(),
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
			IpcMode:     "shareable",
			OomScoreAdj: -998,
			Resources:   container.Resources{CgroupParent: "/kubepods/pod1"},
			// An unset CRI seccomp profile means unconfined.
			SecurityOpt: []string{"seccomp=unconfined"},
		},
	}
}

func runSandbox(t *testing.T, cases []tcase[SandboxParams]) {
	t.Helper()
	run(t, cases, baseSandbox, baseSandboxResult, Sandbox)
}

func TestSandboxValidation(t *testing.T) {
	runSandbox(t, []tcase[SandboxParams]{
		{name: "base"},
		{
			name:     "nil config",
			edit:     func(p *SandboxParams) { p.Config = nil },
			errField: "config", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "nil metadata",
			edit:     func(p *SandboxParams) { p.Config.Metadata = nil },
			errField: "config.metadata", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "no name",
			edit:     func(p *SandboxParams) { p.Config.Metadata.Name = "" },
			errField: "config.metadata.name", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "no namespace",
			edit:     func(p *SandboxParams) { p.Config.Metadata.Namespace = "" },
			errField: "config.metadata.namespace", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "no uid",
			edit:     func(p *SandboxParams) { p.Config.Metadata.Uid = "" },
			errField: "config.metadata.uid", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "no linux config",
			edit: func(p *SandboxParams) { p.Config.Linux = nil },
			want: func(r *Result) { r.HostConfig.CgroupParent = "" },
		},
		{
			name: "resources and overhead are the cgroup parent's",
			edit: func(p *SandboxParams) {
				p.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}
				p.Config.Linux.Overhead = &runtimeapi.LinuxContainerResources{CpuShares: 10}
			},
		},
	})
}

func TestSandboxInternalErrors(t *testing.T) {
	p := baseSandbox()
	p.Image = ""
	if _, err := Sandbox(p, fullHost()); err == nil || errdefs.IsInvalidArgument(err) {
		t.Fatalf("error = %v, want a plain error", err)
	}
}

func TestSandboxNamespaces(t *testing.T) {
	const nsField = "config.linux.security_context.namespace_options"
	runSandbox(t, []tcase[SandboxParams]{
		{
			name: "host network: no hostname, host UTS",
			edit: func(p *SandboxParams) { sns(p).Network = runtimeapi.NamespaceMode_NODE },
			want: func(r *Result) {
				r.Config.Hostname = ""
				r.Config.NetworkDisabled = false
				r.HostConfig.NetworkMode = "host"
				r.HostConfig.UTSMode = "host"
			},
		},
		{
			name: "host IPC",
			edit: func(p *SandboxParams) { sns(p).Ipc = runtimeapi.NamespaceMode_NODE },
			want: func(r *Result) { r.HostConfig.IpcMode = "host" },
		},
		{
			name: "host PID",
			edit: func(p *SandboxParams) { sns(p).Pid = runtimeapi.NamespaceMode_NODE },
			want: func(r *Result) { r.HostConfig.PidMode = "host" },
		},
		{
			name: "pid CONTAINER is private",
			edit: func(p *SandboxParams) { sns(p).Pid = runtimeapi.NamespaceMode_CONTAINER },
		},
		{
			name:     "network TARGET",
			edit:     func(p *SandboxParams) { sns(p).Network = runtimeapi.NamespaceMode_TARGET },
			errField: nsField + ".network", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "unknown ipc mode",
			edit:     func(p *SandboxParams) { sns(p).Ipc = 5 },
			errField: nsField + ".ipc", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "user namespace POD",
			edit: func(p *SandboxParams) {
				sns(p).UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}
			},
			errField: nsField + ".userns_options.mode", errKind: errdefs.IsNotImplemented,
		},
	})
}

func TestSandboxSecurity(t *testing.T) {
	limited := limitedHost()
	runSandbox(t, []tcase[SandboxParams]{
		{
			name: "user, group, supplemental groups, readonly rootfs, selinux",
			edit: func(p *SandboxParams) {
				sc := ssc(p)
				sc.RunAsUser = i64(65535)
				sc.RunAsGroup = i64(65535)
				sc.SupplementalGroups = []int64{1, 2}
				sc.ReadonlyRootfs = true
				sc.SelinuxOptions = &runtimeapi.SELinuxOption{Level: "s0:c1,c2"}
			},
			want: func(r *Result) {
				r.Config.User = "65535:65535"
				r.HostConfig.GroupAdd = []string{"1", "2"}
				r.HostConfig.ReadonlyRootfs = true
				r.HostConfig.SecurityOpt = []string{"label=level:s0:c1,c2", "seccomp=unconfined"}
			},
		},
		{
			name:     "uid out of range",
			edit:     func(p *SandboxParams) { ssc(p).RunAsUser = i64(1 << 31) },
			errField: scField + ".run_as_user.value", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "group without user",
			edit:     func(p *SandboxParams) { ssc(p).RunAsGroup = i64(1) },
			errField: scField + ".run_as_group", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "supplemental group out of range",
			edit:     func(p *SandboxParams) { ssc(p).SupplementalGroups = []int64{1 << 40} },
			errField: scField + ".supplemental_groups[0]", errKind: errdefs.IsInvalidArgument,
		},
		{
			// The pause process's groups give access to nothing: Strict
			// is taken, and its containers honour it.
			name: "Strict supplemental groups",
			edit: func(p *SandboxParams) { ssc(p).SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict },
		},
		{
			// The CRI's default, which critest checks: unset is unconfined.
			name: "unset seccomp is unconfined",
			edit: func(p *SandboxParams) {
				ssc(p).Seccomp = nil
				ssc(p).SeccompProfilePath = ""
			},
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined"} },
		},
		{
			name: "seccomp RuntimeDefault is Docker's default profile",
			edit: func(p *SandboxParams) {
				ssc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_RuntimeDefault, "")
			},
			want: func(r *Result) { r.HostConfig.SecurityOpt = nil },
		},
		{
			name: "seccomp Unconfined",
			edit: func(p *SandboxParams) {
				ssc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "")
			},
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined"} },
		},
		{
			name: "seccomp Localhost",
			edit: func(p *SandboxParams) {
				p.ReadFile = profiles
				ssc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/ok.json")
			},
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{okProfile} },
		},
		{
			name: "seccomp Localhost without a reader",
			edit: func(p *SandboxParams) {
				ssc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/ok.json")
			},
			errField: scField + ".seccomp.localhost_ref", errKind: errdefs.IsNotImplemented,
		},
		{
			name: "deprecated seccomp path",
			edit: func(p *SandboxParams) { ssc(p).SeccompProfilePath = "unconfined" },
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined"} },
		},
		{
			name: "deprecated seccomp path runtime/default",
			edit: func(p *SandboxParams) { ssc(p).SeccompProfilePath = "runtime/default" },
			want: func(r *Result) { r.HostConfig.SecurityOpt = nil },
		},
		{
			name:     "deprecated seccomp path unknown",
			edit:     func(p *SandboxParams) { ssc(p).SeccompProfilePath = "nope" },
			errField: scField + ".seccomp_profile_path", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "apparmor Localhost",
			edit: func(p *SandboxParams) {
				ssc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "pod-profile")
			},
			want: func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined", "apparmor=pod-profile"} },
		},
		{
			name: "apparmor Localhost without AppArmor",
			host: &limited,
			edit: func(p *SandboxParams) {
				ssc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "pod-profile")
			},
			errField: scField + ".apparmor.localhost_ref", errKind: errdefs.IsFailedPrecondition,
		},
		{
			name: "privileged on a full host",
			edit: func(p *SandboxParams) {
				ssc(p).Privileged = true
				ssc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/nowhere.json")
			},
			want: func(r *Result) {
				r.HostConfig.Privileged = true
				// Docker's privileged is unconfined already.
				r.HostConfig.SecurityOpt = nil
				r.HostConfig.MaskedPaths = []string{}
				r.HostConfig.ReadonlyPaths = []string{}
			},
		},
		{
			name: "privileged on a limited host is emulated",
			host: &limited,
			edit: func(p *SandboxParams) { ssc(p).Privileged = true },
			want: func(r *Result) {
				r.HostConfig.CapAdd = []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"}
				r.HostConfig.SecurityOpt = []string{"seccomp=unconfined"}
				r.HostConfig.DeviceCgroupRules = []string{"a *:* rwm"}
				r.HostConfig.MaskedPaths = []string{}
				r.HostConfig.ReadonlyPaths = []string{}
				r.HostConfig.OomScoreAdj = -500
				r.Warnings = []string{scField + ".privileged: emulated: the host's bounding set lacks some capabilities, " +
					"so the container gets the host's 3 capabilities, no seccomp or AppArmor confinement, " +
					"no masked or read-only paths and access to every device, " +
					"but the host's devices are not added to /dev and /sys stays read-only"}
			},
		},
	})
}

func TestSandboxOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct {
		min, want int
	}{
		{min: -1000, want: -998},
		{min: -998, want: -998},
		{min: -500, want: -500},
		{min: 0, want: 0},
	} {
		h := fullHost()
		h.MinOOMScoreAdj = tc.min
		r, err := Sandbox(baseSandbox(), h)
		if err != nil {
			t.Fatal(err)
		}
		if r.HostConfig.OomScoreAdj != tc.want || r.Warnings != nil {
			t.Errorf("host min %d: OomScoreAdj = %d, warnings %q; want %d, none", tc.min, r.HostConfig.OomScoreAdj, r.Warnings, tc.want)
		}
	}
}

func TestSandboxCgroupParent(t *testing.T) {
	systemd := fullHost()
	systemd.SystemdCgroup = true
	runSandbox(t, []tcase[SandboxParams]{
		{
			name: "systemd: the slice name",
			host: &systemd,
			edit: func(p *SandboxParams) { p.Config.Linux.CgroupParent = "/kubepods.slice/kubepods-pod1.slice" },
			want: func(r *Result) { r.HostConfig.CgroupParent = "kubepods-pod1.slice" },
		},
		{
			name:     "systemd: not a slice",
			host:     &systemd,
			errField: "config.linux.cgroup_parent", errKind: errdefs.IsInvalidArgument,
		},
	})
}
