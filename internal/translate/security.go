package translate

import (
	"slices"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const securityContextField = "config.linux.security_context"

// securityContext is what the sandbox and container security contexts
// share, so the pause container and the containers follow one set of rules.
type securityContext struct {
	privileged               bool
	runAsUser                *runtimeapi.Int64Value
	runAsUsername            string
	runAsGroup               *runtimeapi.Int64Value
	supplementalGroups       []int64
	supplementalGroupsPolicy runtimeapi.SupplementalGroupsPolicy
	readonlyRootfs           bool
	selinux                  *runtimeapi.SELinuxOption
	seccomp                  *runtimeapi.SecurityProfile
	seccompProfilePath       string
	apparmor                 *runtimeapi.SecurityProfile
	apparmorProfile          string
	// imageUser is the image's USER; primaryGroup resolves a user's
	// primary group from the image's /etc/passwd. Strict needs both to
	// name the group explicitly (containers only; nil for the sandbox,
	// whose pause process's groups do not matter).
	imageUser    string
	primaryGroup func(user string) (int64, error)
	sandbox      bool
}

func sandboxSecurity(sc *runtimeapi.LinuxSandboxSecurityContext) securityContext {
	return securityContext{
		privileged:               sc.GetPrivileged(),
		runAsUser:                sc.GetRunAsUser(),
		runAsGroup:               sc.GetRunAsGroup(),
		supplementalGroups:       sc.GetSupplementalGroups(),
		supplementalGroupsPolicy: sc.GetSupplementalGroupsPolicy(),
		readonlyRootfs:           sc.GetReadonlyRootfs(),
		selinux:                  sc.GetSelinuxOptions(),
		seccomp:                  sc.GetSeccomp(),
		seccompProfilePath:       sc.GetSeccompProfilePath(),
		apparmor:                 sc.GetApparmor(),
		sandbox:                  true,
	}
}

func containerSecurity(sc *runtimeapi.LinuxContainerSecurityContext) securityContext {
	return securityContext{
		privileged:               sc.GetPrivileged(),
		runAsUser:                sc.GetRunAsUser(),
		runAsUsername:            sc.GetRunAsUsername(),
		runAsGroup:               sc.GetRunAsGroup(),
		supplementalGroups:       sc.GetSupplementalGroups(),
		supplementalGroupsPolicy: sc.GetSupplementalGroupsPolicy(),
		readonlyRootfs:           sc.GetReadonlyRootfs(),
		selinux:                  sc.GetSelinuxOptions(),
		seccomp:                  sc.GetSeccomp(),
		seccompProfilePath:       sc.GetSeccompProfilePath(),
		apparmor:                 sc.GetApparmor(),
		apparmorProfile:          sc.GetApparmorProfile(),
	}
}

// applySecurity sets what sc asks for, in SecurityOpt order: SELinux
// labels, seccomp, AppArmor.
func (b *builder) applySecurity(sc securityContext, readFile func(string) ([]byte, error)) error {
	user, err := userSpec(sc)
	if err != nil {
		return err
	}
	if user, err = strictUser(sc, user); err != nil {
		return err
	}
	b.config.User = user
	if b.hostCfg.GroupAdd, err = groupAdd(sc); err != nil {
		return err
	}
	b.hostCfg.ReadonlyRootfs = sc.readonlyRootfs
	for _, l := range selinuxLabels(sc.selinux) {
		b.securityOpt(l)
	}
	if sc.privileged {
		// Privileged means unconfined: the profiles asked for are not
		// even resolved, so a profile this host lacks cannot fail it.
		b.privileged()
		return nil
	}
	if err := b.seccomp(sc, readFile); err != nil {
		return err
	}
	return b.appArmor(sc)
}

// userSpec returns Docker's "user[:group]".
func userSpec(sc securityContext) (string, error) {
	var user string
	switch {
	case sc.runAsUser != nil && sc.runAsUsername != "":
		// The kubelet sends one or the other; honouring one would ignore
		// the other silently.
		return "", invalidf(securityContextField+".run_as_username", "set together with run_as_user")
	case sc.runAsUser != nil:
		if err := checkID(securityContextField+".run_as_user.value", sc.runAsUser.GetValue()); err != nil {
			return "", err
		}
		user = strconv.FormatInt(sc.runAsUser.GetValue(), 10)
	case sc.runAsUsername != "":
		if strings.ContainsAny(sc.runAsUsername, ":\x00") {
			return "", invalidf(securityContextField+".run_as_username", "%q is not a user name", sc.runAsUsername)
		}
		user = sc.runAsUsername
	}
	if sc.runAsGroup != nil {
		if user == "" {
			// Docker would apply the group to the image's user, which is
			// not what the pod asked for; containerd refuses it too.
			return "", invalidf(securityContextField+".run_as_group", "requires run_as_user or run_as_username")
		}
		if err := checkID(securityContextField+".run_as_group.value", sc.runAsGroup.GetValue()); err != nil {
			return "", err
		}
		user += ":" + strconv.FormatInt(sc.runAsGroup.GetValue(), 10)
	}
	return user, nil
}

// strictUser makes SupplementalGroupsPolicy Strict out of Docker, which
// otherwise adds the user's memberships from the image's /etc/group: a
// user given with an explicit group ("uid:gid") gets no group of the
// image's. So the primary group is named: run_as_group, else the user's
// group in the image's /etc/passwd (root for a root or absent user).
func strictUser(sc securityContext, user string) (string, error) {
	if sc.supplementalGroupsPolicy != runtimeapi.SupplementalGroupsPolicy_Strict || sc.sandbox {
		// The pause process's groups give no access to anything.
		return user, nil
	}
	if sc.primaryGroup == nil {
		return "", notImplementedf(securityContextField+".supplemental_groups_policy", "Strict needs the image's /etc/passwd, which this runtime cannot read")
	}
	if user == "" {
		user = sc.imageUser
	}
	name, _, hasGroup := strings.Cut(user, ":")
	switch {
	case hasGroup:
		return user, nil
	case name == "" || name == "0" || name == "root":
		return "0:0", nil
	}
	gid, err := sc.primaryGroup(name)
	if err != nil {
		return "", invalidf(securityContextField+".supplemental_groups_policy", "Strict: primary group of user %q: %v", name, err)
	}
	return name + ":" + strconv.FormatInt(gid, 10), nil
}

func groupAdd(sc securityContext) ([]string, error) {
	const field = securityContextField + ".supplemental_groups_policy"
	switch sc.supplementalGroupsPolicy {
	case runtimeapi.SupplementalGroupsPolicy_Merge:
		// Docker's own behaviour: the image's /etc/group memberships of
		// the user plus GroupAdd.
	case runtimeapi.SupplementalGroupsPolicy_Strict:
		// strictUser names the group, which keeps the image's groups out.
	default:
		return nil, invalidf(field, "unknown policy %d", int32(sc.supplementalGroupsPolicy))
	}
	var groups []string
	for i, g := range sc.supplementalGroups {
		if err := checkID(indexed(securityContextField+".supplemental_groups", i), g); err != nil {
			return nil, err
		}
		groups = append(groups, strconv.FormatInt(g, 10))
	}
	return groups, nil
}

func selinuxLabels(o *runtimeapi.SELinuxOption) []string {
	var labels []string
	for _, l := range []struct{ key, value string }{
		{"user", o.GetUser()},
		{"role", o.GetRole()},
		{"type", o.GetType()},
		{"level", o.GetLevel()},
	} {
		if l.value != "" {
			labels = append(labels, "label="+l.key+":"+l.value)
		}
	}
	return labels
}

// privileged gives what Docker's Privileged gives, as far as the host
// allows. Docker's own flag asks for every capability it knows and fails
// on a host whose bounding set lacks one (CAP_SYS_RESOURCE in an
// unprivileged LXC container, say); a pod the host can run must start, so
// there it is emulated with the capabilities the host has.
func (b *builder) privileged() {
	// CRI's masked and read-only paths do not apply to a privileged
	// container; empty (not nil, which Docker reads as its defaults).
	b.hostCfg.MaskedPaths = []string{}
	b.hostCfg.ReadonlyPaths = []string{}
	if b.host.AllCapabilities {
		b.hostCfg.Privileged = true
		return
	}
	b.hostCfg.CapAdd = slices.Clone(b.host.Capabilities)
	b.securityOpt("seccomp=unconfined")
	if b.host.AppArmor {
		b.securityOpt("apparmor=unconfined")
	}
	b.hostCfg.DeviceCgroupRules = []string{"a *:* rwm"}
	b.warnf(securityContextField+".privileged",
		"emulated: the host's bounding set lacks some capabilities, so the container gets the host's %d capabilities, "+
			"no seccomp or AppArmor confinement, no masked or read-only paths and access to every device, "+
			"but the host's devices are not added to /dev and /sys stays read-only",
		len(b.host.Capabilities))
}

// containerOnlySecurity applies the fields only a container's security
// context has.
func (b *builder) containerOnlySecurity(sc *runtimeapi.LinuxContainerSecurityContext, sandboxPrivileged bool) error {
	if err := b.capabilities(sc.GetCapabilities(), sc.GetPrivileged()); err != nil {
		return err
	}
	if sc.GetPrivileged() {
		if !sandboxPrivileged {
			// The sandbox's privileged flag is the pod's promise that it
			// needs none; containerd holds the pod to it too.
			return invalidf(securityContextField+".privileged", "privileged container in a sandbox whose sandbox_config.linux.security_context.privileged is false")
		}
	} else {
		var err error
		// The kubelet sends the exact lists it wants (its defaults
		// included), so none means none, never Docker's defaults.
		if b.hostCfg.MaskedPaths, err = exactPaths(securityContextField+".masked_paths", sc.GetMaskedPaths()); err != nil {
			return err
		}
		if b.hostCfg.ReadonlyPaths, err = exactPaths(securityContextField+".readonly_paths", sc.GetReadonlyPaths()); err != nil {
			return err
		}
	}
	if sc.GetNoNewPrivs() {
		b.securityOpt("no-new-privileges")
	}
	return nil
}

// exactPaths returns paths as a non-nil slice: Docker reads nil as "my
// defaults".
func exactPaths(field string, paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for i, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, invalidf(indexed(field, i), "%q is not an absolute path", p)
		}
		out = append(out, p)
	}
	return out, nil
}
