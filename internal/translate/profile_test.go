package translate

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// profiles is a fake node filesystem for Localhost seccomp profiles.
func profiles(path string) ([]byte, error) {
	switch path {
	case "/profiles/ok.json":
		return []byte("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": []\n}\n"), nil
	case "/profiles/bad.json":
		return []byte("{not json"), nil
	case "/profiles/array.json":
		return []byte("[1, 2]"), nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

const okProfile = `seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}`

func seccompProfile(t runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
	return &runtimeapi.SecurityProfile{ProfileType: t, LocalhostRef: ref}
}

func TestContainerSeccomp(t *testing.T) {
	const field = scField + ".seccomp"
	const legacyField = scField + ".seccomp_profile_path"
	withProfiles := func(edit func(*ContainerParams)) func(*ContainerParams) {
		return func(p *ContainerParams) {
			p.ReadFile = profiles
			edit(p)
		}
	}
	unconfined := func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined"} }
	// Docker's default profile is RuntimeDefault: no option at all.
	dockerDefault := func(r *Result) { r.HostConfig.SecurityOpt = nil }
	localhost := func(r *Result) { r.HostConfig.SecurityOpt = []string{okProfile} }
	runContainer(t, []tcase[ContainerParams]{
		{
			// The CRI's default, which critest checks: unset is unconfined.
			name: "unset seccomp is unconfined",
			edit: func(p *ContainerParams) {
				csc(p).Seccomp = nil
				csc(p).SeccompProfilePath = ""
			},
			want: unconfined,
		},
		{
			name: "no security context is unconfined",
			edit: func(p *ContainerParams) { p.Config.Linux = nil },
			want: unconfined,
		},
		{
			name: "RuntimeDefault",
			edit: func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_RuntimeDefault, "")
			},
			want: dockerDefault,
		},
		{
			name: "RuntimeDefault wins over the deprecated path",
			edit: func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_RuntimeDefault, "")
				csc(p).SeccompProfilePath = "unconfined"
			},
			want: dockerDefault,
		},
		{
			name: "Unconfined",
			edit: func(p *ContainerParams) { csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "") },
			want: unconfined,
		},
		{
			name: "Localhost, compacted",
			edit: withProfiles(func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/ok.json")
			}),
			want: localhost,
		},
		{
			name: "profile wins over the deprecated path",
			edit: func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "")
				csc(p).SeccompProfilePath = "localhost//profiles/missing.json"
			},
			want: unconfined,
		},
		{
			name: "legacy empty is unconfined",
			edit: func(p *ContainerParams) { csc(p).SeccompProfilePath = "" },
			want: unconfined,
		},
		{
			name: "legacy runtime/default",
			edit: func(p *ContainerParams) { csc(p).SeccompProfilePath = "runtime/default" },
			want: dockerDefault,
		},
		{
			name: "legacy docker/default",
			edit: func(p *ContainerParams) { csc(p).SeccompProfilePath = "docker/default" },
			want: dockerDefault,
		},
		{
			name: "legacy unconfined",
			edit: func(p *ContainerParams) { csc(p).SeccompProfilePath = "unconfined" },
			want: unconfined,
		},
		{
			name: "legacy localhost",
			edit: withProfiles(func(p *ContainerParams) { csc(p).SeccompProfilePath = "localhost//profiles/ok.json" }),
			want: localhost,
		},
		{
			name:     "legacy unknown",
			edit:     func(p *ContainerParams) { csc(p).SeccompProfilePath = "strict" },
			errField: legacyField, errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "legacy localhost relative",
			edit:     withProfiles(func(p *ContainerParams) { csc(p).SeccompProfilePath = "localhost/profiles/ok.json" }),
			errField: legacyField, errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "Localhost relative",
			edit: withProfiles(func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "profiles/ok.json")
			}),
			errField: field + ".localhost_ref", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "Localhost without ref",
			edit: withProfiles(func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "")
			}),
			errField: field + ".localhost_ref", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "Localhost missing file",
			edit: withProfiles(func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/missing.json")
			}),
			errField: field + ".localhost_ref",
			errKind: func(err error) bool {
				return errdefs.IsInvalidArgument(err) && errors.Is(err, fs.ErrNotExist)
			},
		},
		{
			name: "Localhost invalid JSON",
			edit: withProfiles(func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/bad.json")
			}),
			errField: field + ".localhost_ref", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "Localhost JSON not an object",
			edit: withProfiles(func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/array.json")
			}),
			errField: field + ".localhost_ref", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "Localhost without a reader",
			edit: func(p *ContainerParams) {
				csc(p).Seccomp = seccompProfile(runtimeapi.SecurityProfile_Localhost, "/profiles/ok.json")
			},
			errField: field + ".localhost_ref", errKind: errdefs.IsNotImplemented,
		},
		{
			name:     "unknown profile type",
			edit:     func(p *ContainerParams) { csc(p).Seccomp = seccompProfile(9, "") },
			errField: field + ".profile_type", errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestContainerAppArmor(t *testing.T) {
	const field = scField + ".apparmor"
	const legacyField = scField + ".apparmor_profile"
	noAppArmor := fullHost()
	noAppArmor.AppArmor = false
	// Seccomp is left unset (unconfined), so its option comes first.
	apparmor := func(opt string) func(*Result) {
		return func(r *Result) { r.HostConfig.SecurityOpt = []string{"seccomp=unconfined", opt} }
	}
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "RuntimeDefault",
			edit: func(p *ContainerParams) {
				csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_RuntimeDefault, "")
			},
		},
		{
			name: "Unconfined",
			edit: func(p *ContainerParams) { csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "") },
			want: apparmor("apparmor=unconfined"),
		},
		{
			name: "Unconfined without AppArmor needs nothing",
			host: &noAppArmor,
			edit: func(p *ContainerParams) { csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "") },
		},
		{
			name: "Localhost",
			edit: func(p *ContainerParams) {
				csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "k8s-deny-write")
			},
			want: apparmor("apparmor=k8s-deny-write"),
		},
		{
			name: "Localhost with the legacy prefix",
			edit: func(p *ContainerParams) {
				csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "localhost/k8s-deny-write")
			},
			want: apparmor("apparmor=k8s-deny-write"),
		},
		{
			name: "Localhost without AppArmor",
			host: &noAppArmor,
			edit: func(p *ContainerParams) {
				csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "k8s-deny-write")
			},
			errField: field + ".localhost_ref", errKind: errdefs.IsFailedPrecondition,
		},
		{
			name:     "Localhost without ref",
			edit:     func(p *ContainerParams) { csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "") },
			errField: field + ".localhost_ref", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "Localhost with the legacy prefix only",
			edit: func(p *ContainerParams) {
				csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_Localhost, "localhost/")
			},
			errField: field + ".localhost_ref", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "legacy localhost without a name",
			edit:     func(p *ContainerParams) { csc(p).ApparmorProfile = "localhost/" },
			errField: legacyField, errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "profile wins over the deprecated string",
			edit: func(p *ContainerParams) {
				csc(p).Apparmor = seccompProfile(runtimeapi.SecurityProfile_RuntimeDefault, "")
				csc(p).ApparmorProfile = "localhost/other"
			},
		},
		{
			name: "legacy runtime/default",
			edit: func(p *ContainerParams) { csc(p).ApparmorProfile = "runtime/default" },
		},
		{
			name: "legacy unconfined",
			edit: func(p *ContainerParams) { csc(p).ApparmorProfile = "unconfined" },
			want: apparmor("apparmor=unconfined"),
		},
		{
			name: "legacy localhost",
			edit: func(p *ContainerParams) { csc(p).ApparmorProfile = "localhost/k8s-deny-write" },
			want: apparmor("apparmor=k8s-deny-write"),
		},
		{
			name:     "legacy localhost without AppArmor",
			host:     &noAppArmor,
			edit:     func(p *ContainerParams) { csc(p).ApparmorProfile = "localhost/k8s-deny-write" },
			errField: legacyField, errKind: errdefs.IsFailedPrecondition,
		},
		{
			name:     "legacy unknown",
			edit:     func(p *ContainerParams) { csc(p).ApparmorProfile = "docker-default" },
			errField: legacyField, errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestSecurityOptOrder(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{{
		name: "selinux, seccomp, apparmor, no-new-privileges",
		edit: func(p *ContainerParams) {
			sc := csc(p)
			sc.NoNewPrivs = true
			sc.Apparmor = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "")
			sc.Seccomp = seccompProfile(runtimeapi.SecurityProfile_Unconfined, "")
			sc.SelinuxOptions = &runtimeapi.SELinuxOption{Type: "t"}
		},
		want: func(r *Result) {
			r.HostConfig.SecurityOpt = []string{"label=type:t", "seccomp=unconfined", "apparmor=unconfined", "no-new-privileges"}
		},
	}})
}
