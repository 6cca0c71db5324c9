package manager

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's defaults (k8s.io/kubernetes/pkg/securitycontext): what a
// Default procMount hides or makes read-only in /proc and /sys.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// appArmorAnnotationPrefix is the deprecated per-container AppArmor
// annotation the kubelet still honours after the fields.
const appArmorAnnotationPrefix = "container.apparmor.security.beta.kubernetes.io/"

// namespaceOptions are the pod's namespaces, the same for the sandbox and
// every container in it.
func namespaceOptions(pod *corev1.Pod) (*runtimeapi.NamespaceOption, error) {
	if u := pod.Spec.HostUsers; u != nil && !*u {
		return nil, fmt.Errorf("spec.hostUsers: false is not supported: berth run does not map user namespaces")
	}
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case pod.Spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	return ns, nil
}

func supplementalGroupsPolicy(psc *corev1.PodSecurityContext) (runtimeapi.SupplementalGroupsPolicy, error) {
	if psc.SupplementalGroupsPolicy == nil {
		return runtimeapi.SupplementalGroupsPolicy_Merge, nil
	}
	v, ok := runtimeapi.SupplementalGroupsPolicy_value[string(*psc.SupplementalGroupsPolicy)]
	if !ok {
		return 0, fmt.Errorf("spec.securityContext.supplementalGroupsPolicy: unsupported value %q (want Merge or Strict)",
			*psc.SupplementalGroupsPolicy)
	}
	return runtimeapi.SupplementalGroupsPolicy(v), nil
}

func runtimeSELinux(o *corev1.SELinuxOptions) *runtimeapi.SELinuxOption {
	if o == nil {
		return nil
	}
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}

// effectiveSecurity is the pod's security context overridden field by
// field by the container's, as the kubelet's
// DetermineEffectiveSecurityContext, with where each inherited field came
// from so errors name the field the user wrote.
type effectiveSecurity struct {
	corev1.SecurityContext
	// runAsUserField, seccompField and appArmorField are the spec paths
	// of the fields that won.
	runAsUserField, seccompField, appArmorField string
}

func mergeSecurityContext(pod *corev1.Pod, c *corev1.Container, field string) effectiveSecurity {
	var e effectiveSecurity
	if psc := pod.Spec.SecurityContext; psc != nil {
		e.SELinuxOptions = psc.SELinuxOptions
		e.WindowsOptions = psc.WindowsOptions
		e.RunAsUser = psc.RunAsUser
		e.RunAsGroup = psc.RunAsGroup
		e.RunAsNonRoot = psc.RunAsNonRoot
		e.SeccompProfile = psc.SeccompProfile
		e.AppArmorProfile = psc.AppArmorProfile
		e.runAsUserField = "spec.securityContext.runAsUser"
		e.seccompField = "spec.securityContext.seccompProfile"
		e.appArmorField = "spec.securityContext.appArmorProfile"
	}
	csc := c.SecurityContext
	if csc == nil {
		return e
	}
	prefix := field + ".securityContext."
	e.Capabilities = csc.Capabilities
	e.Privileged = csc.Privileged
	e.ReadOnlyRootFilesystem = csc.ReadOnlyRootFilesystem
	e.AllowPrivilegeEscalation = csc.AllowPrivilegeEscalation
	e.ProcMount = csc.ProcMount
	if csc.SELinuxOptions != nil {
		e.SELinuxOptions = csc.SELinuxOptions
	}
	if csc.WindowsOptions != nil {
		e.WindowsOptions = csc.WindowsOptions
	}
	if csc.RunAsUser != nil {
		e.RunAsUser, e.runAsUserField = csc.RunAsUser, prefix+"runAsUser"
	}
	if csc.RunAsGroup != nil {
		e.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		e.RunAsNonRoot = csc.RunAsNonRoot
	}
	if csc.SeccompProfile != nil {
		e.SeccompProfile, e.seccompField = csc.SeccompProfile, prefix+"seccompProfile"
	}
	if csc.AppArmorProfile != nil {
		e.AppArmorProfile, e.appArmorField = csc.AppArmorProfile, prefix+"appArmorProfile"
	}
	return e
}

// containerSecurityContext is the kubelet's
// determineEffectiveSecurityContext. When runAsNonRoot is set without a
// runAsUser the image's user decides, which this cannot see: the caller
// must run verifyImageUser before CreateContainer, as the kubelet does.
func containerSecurityContext(pod *corev1.Pod, c *corev1.Container, field string, opts configOptions) (*runtimeapi.LinuxContainerSecurityContext, []string, error) {
	e := mergeSecurityContext(pod, c, field)
	var warnings []string
	sc := &runtimeapi.LinuxContainerSecurityContext{
		SelinuxOptions: runtimeSELinux(e.SELinuxOptions),
	}
	if e.WindowsOptions != nil {
		warnings = append(warnings, field+".securityContext.windowsOptions: ignored on Linux")
	}
	if caps := e.Capabilities; caps != nil {
		// Names go as written ("NET_ADMIN" or "CAP_NET_ADMIN"): the
		// runtime normalises them, as it does for the kubelet.
		sc.Capabilities = &runtimeapi.Capability{}
		for _, cp := range caps.Add {
			sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(cp))
		}
		for _, cp := range caps.Drop {
			sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(cp))
		}
	}
	sc.Privileged = e.Privileged != nil && *e.Privileged
	sc.ReadonlyRootfs = e.ReadOnlyRootFilesystem != nil && *e.ReadOnlyRootFilesystem
	// Only an explicit false sets no_new_privs; unset means allowed.
	sc.NoNewPrivs = e.AllowPrivilegeEscalation != nil && !*e.AllowPrivilegeEscalation
	if sc.Privileged && sc.NoNewPrivs {
		return nil, nil, fmt.Errorf("%s.securityContext.allowPrivilegeEscalation: cannot be false when privileged is true", field)
	}
	if e.RunAsUser != nil {
		if e.RunAsNonRoot != nil && *e.RunAsNonRoot && *e.RunAsUser == 0 {
			return nil, nil, fmt.Errorf("%s: 0 breaks runAsNonRoot (container %q)", e.runAsUserField, c.Name)
		}
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *e.RunAsUser}
	}
	if e.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *e.RunAsGroup}
	}

	ns, err := namespaceOptions(pod)
	if err != nil {
		return nil, nil, err
	}
	sc.NamespaceOptions = ns
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
		sc.SupplementalGroups = append(sc.SupplementalGroups, psc.SupplementalGroups...)
		if sc.SupplementalGroupsPolicy, err = supplementalGroupsPolicy(psc); err != nil {
			return nil, nil, err
		}
	}

	if sc.MaskedPaths, sc.ReadonlyPaths, err = procPaths(e.ProcMount, sc.Privileged, field); err != nil {
		return nil, nil, err
	}
	if sc.Seccomp, err = seccompProfile(e.SeccompProfile, e.seccompField, opts.SeccompProfileRoot); err != nil {
		return nil, nil, err
	}
	if sc.Apparmor, sc.ApparmorProfile, err = appArmorProfile(pod, c, e); err != nil {
		return nil, nil, err
	}
	return sc, warnings, nil
}

// procPaths: a privileged container sees all of /proc and /sys, as it
// would through any runtime, so it gets no lists at all.
func procPaths(pm *corev1.ProcMountType, privileged bool, field string) (masked, readonly []string, err error) {
	if pm != nil {
		switch *pm {
		case corev1.DefaultProcMount:
		case corev1.UnmaskedProcMount:
			return nil, nil, nil
		default:
			return nil, nil, fmt.Errorf("%s.securityContext.procMount: unsupported value %q (want Default or Unmasked)", field, *pm)
		}
	}
	if privileged {
		return nil, nil, nil
	}
	return slices.Clone(defaultMaskedPaths), slices.Clone(defaultReadonlyPaths), nil
}

// seccompProfile: unset is Unconfined, the kubelet's default without
// --seccomp-default.
func seccompProfile(p *corev1.SeccompProfile, field, root string) (*runtimeapi.SecurityProfile, error) {
	if p == nil {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case corev1.SeccompProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case corev1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			return nil, fmt.Errorf("%s.localhostProfile: required when type is Localhost", field)
		}
		lp := *p.LocalhostProfile
		if filepath.IsAbs(lp) || slices.Contains(strings.Split(filepath.ToSlash(lp), "/"), "..") {
			return nil, fmt.Errorf("%s.localhostProfile: %q must be a path relative to %s without \"..\"", field, lp, root)
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: filepath.Join(root, lp),
		}, nil
	}
	return nil, fmt.Errorf("%s.type: unsupported value %q (want RuntimeDefault, Unconfined or Localhost)", field, p.Type)
}

// appArmorProfile returns the profile and its deprecated string form,
// which older runtimes still read. Unset leaves the runtime's default.
func appArmorProfile(pod *corev1.Pod, c *corev1.Container, e effectiveSecurity) (*runtimeapi.SecurityProfile, string, error) {
	p, field := e.AppArmorProfile, e.appArmorField
	if p == nil {
		key := appArmorAnnotationPrefix + c.Name
		v, ok := pod.Annotations[key]
		if !ok {
			return nil, "", nil
		}
		field = "metadata.annotations[" + key + "]"
		switch {
		case v == "runtime/default":
			p = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}
		case v == "unconfined":
			p = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
		case strings.HasPrefix(v, "localhost/"):
			name := strings.TrimPrefix(v, "localhost/")
			p = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
		default:
			return nil, "", fmt.Errorf("%s: unsupported value %q (want runtime/default, unconfined or localhost/<name>)", field, v)
		}
	}
	switch p.Type {
	case corev1.AppArmorProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, "runtime/default", nil
	case corev1.AppArmorProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "unconfined", nil
	case corev1.AppArmorProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			return nil, "", fmt.Errorf("%s.localhostProfile: required when type is Localhost", field)
		}
		name := *p.LocalhostProfile
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: name},
			"localhost/" + name, nil
	}
	return nil, "", fmt.Errorf("%s.type: unsupported value %q (want RuntimeDefault, Unconfined or Localhost)", field, p.Type)
}

// verifyImageUser is the half of the kubelet's verifyRunAsNonRoot that
// needs the image: when runAsNonRoot is set and no runAsUser overrides
// it, the image's user must be a non-zero numeric UID. Call it with
// ImageStatus(imageRef).Image before CreateContainer; a failure is the
// kubelet's CreateContainerConfigError.
func verifyImageUser(pod *corev1.Pod, c *corev1.Container, image *runtimeapi.Image) error {
	e := mergeSecurityContext(pod, c, "")
	if e.RunAsNonRoot == nil || !*e.RunAsNonRoot || e.RunAsUser != nil {
		return nil
	}
	switch {
	case image != nil && image.Uid != nil && image.Uid.Value == 0:
		return fmt.Errorf("container %q has runAsNonRoot and image %q will run as root", c.Name, c.Image)
	case image != nil && image.Uid != nil:
		return nil
	case image != nil && image.Username != "":
		return fmt.Errorf("container %q has runAsNonRoot and image %q has non-numeric user (%s), cannot verify user is non-root",
			c.Name, c.Image, image.Username)
	}
	// No user in the image means root, as the kubelet assumes.
	return fmt.Errorf("container %q has runAsNonRoot and image %q will run as root", c.Name, c.Image)
}
