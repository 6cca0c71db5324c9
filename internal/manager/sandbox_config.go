package manager

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// configOptions are the host facts config generation needs.
type configOptions struct {
	// PodLogsDir holds one directory per pod,
	// <PodLogsDir>/<namespace>_<name>_<uid>. Default /var/log/pods.
	PodLogsDir string
	// HostResolvConf is the resolv.conf the Default policy (and
	// ClusterFirst, for want of cluster DNS) copies. Default
	// /etc/resolv.conf.
	HostResolvConf string
	// ClusterDomain is "" for berth run: there is no cluster DNS.
	ClusterDomain string
	// TerminationDir holds the host files bind-mounted at each
	// container's terminationMessagePath:
	// <TerminationDir>/<uid>/containers/<name>/<restartCount>-termination-log.
	// Default /var/lib/berth/run/pods.
	TerminationDir string
	// SeccompProfileRoot is where Localhost seccomp profiles are found,
	// like the kubelet's <root-dir>/seccomp. Default
	// /var/lib/berth/seccomp.
	SeccompProfileRoot string
	Node               podenv.Node
	// DryRun leaves the host alone: no termination-message file is made.
	DryRun bool
}

// withDefaults fills the paths left empty.
func (o configOptions) withDefaults() configOptions {
	if o.PodLogsDir == "" {
		o.PodLogsDir = "/var/log/pods"
	}
	if o.HostResolvConf == "" {
		o.HostResolvConf = "/etc/resolv.conf"
	}
	if o.TerminationDir == "" {
		o.TerminationDir = "/var/lib/berth/run/pods"
	}
	if o.SeccompProfileRoot == "" {
		o.SeccompProfileRoot = "/var/lib/berth/seccomp"
	}
	return o
}

// podLogDir is the sandbox's LogDirectory; container log paths are
// relative to it.
func podLogDir(pod *corev1.Pod, opts configOptions) string {
	return filepath.Join(opts.PodLogsDir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

// generateSandboxConfig is kuberuntime's generatePodSandboxConfig. It has
// no side effects: the caller creates LogDirectory before RunPodSandbox.
// Warnings name what the pod asks for that berth run does not do.
func generateSandboxConfig(pod *corev1.Pod, attempt uint32, opts configOptions) (cfg *runtimeapi.PodSandboxConfig, warnings []string, err error) {
	opts = opts.withDefaults()
	if err := checkPodIdentity(pod); err != nil {
		return nil, nil, err
	}
	cfg = &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Uid:       string(pod.UID),
			Attempt:   attempt,
		},
		LogDirectory: podLogDir(pod, opts),
		Labels:       sandboxLabels(pod),
		Annotations:  sandboxAnnotations(pod),
	}

	dns, w, err := podDNSConfig(pod, opts)
	if err != nil {
		return nil, nil, err
	}
	cfg.DnsConfig = dns
	warnings = append(warnings, w...)

	// A host-network pod keeps the node's hostname, as with the kubelet.
	if !pod.Spec.HostNetwork {
		host, w, err := podHostname(pod, opts)
		if err != nil {
			return nil, nil, err
		}
		cfg.Hostname = host
		warnings = append(warnings, w...)
	}

	ports, w, err := portMappings(pod)
	if err != nil {
		return nil, nil, err
	}
	cfg.PortMappings = ports
	warnings = append(warnings, w...)

	linux, w, err := sandboxLinuxConfig(pod)
	if err != nil {
		return nil, nil, err
	}
	cfg.Linux = linux
	warnings = append(warnings, w...)
	return cfg, warnings, nil
}

// checkPodIdentity refuses a pod the sandbox could not be found by again:
// the caller (berth run) defaults namespace and UID before this.
func checkPodIdentity(pod *corev1.Pod) error {
	switch {
	case pod.Name == "":
		return fmt.Errorf("metadata.name: required")
	case pod.Namespace == "":
		return fmt.Errorf("pod %q: metadata.namespace: required", pod.Name)
	case pod.UID == "":
		return fmt.Errorf("pod %q: metadata.uid: required", pod.Name)
	}
	if o := pod.Spec.OS; o != nil && o.Name != corev1.Linux {
		return fmt.Errorf("spec.os.name: %q: only %q pods run here", o.Name, corev1.Linux)
	}
	return nil
}

// portMappings are the host ports of the pod's containers. Unlike the
// kubelet, which hands every declared port to the runtime and lets it skip
// those without a hostPort, only real host ports are passed: a runtime
// that publishes port 0 would open a random host port.
func portMappings(pod *corev1.Pod) ([]*runtimeapi.PortMapping, []string, error) {
	var (
		out      []*runtimeapi.PortMapping
		warnings []string
	)
	for ci := range pod.Spec.InitContainers {
		for pi, p := range pod.Spec.InitContainers[ci].Ports {
			if p.HostPort != 0 {
				// The kubelet takes host ports from regular
				// containers only.
				warnings = append(warnings, fmt.Sprintf(
					"spec.initContainers[%d].ports[%d].hostPort: ignored: only regular containers publish host ports", ci, pi))
			}
		}
	}
	seen := map[string]bool{}
	for ci := range pod.Spec.Containers {
		c := &pod.Spec.Containers[ci]
		for pi, p := range c.Ports {
			field := fmt.Sprintf("spec.containers[%d].ports[%d]", ci, pi)
			if p.HostPort == 0 {
				continue
			}
			pm, err := portMapping(field, p)
			if err != nil {
				return nil, nil, err
			}
			key := fmt.Sprintf("%s/%s:%d", pm.Protocol, pm.HostIp, pm.HostPort)
			if seen[key] {
				warnings = append(warnings, fmt.Sprintf("%s: host port %s declared twice; the duplicate is ignored", field, key))
				continue
			}
			seen[key] = true
			out = append(out, pm)
		}
	}
	return out, warnings, nil
}

func portMapping(field string, p corev1.ContainerPort) (*runtimeapi.PortMapping, error) {
	if p.HostPort < 1 || p.HostPort > 65535 {
		return nil, fmt.Errorf("%s.hostPort: %d out of range 1-65535", field, p.HostPort)
	}
	if p.ContainerPort < 1 || p.ContainerPort > 65535 {
		return nil, fmt.Errorf("%s.containerPort: %d out of range 1-65535", field, p.ContainerPort)
	}
	if p.HostIP != "" {
		if _, err := netip.ParseAddr(p.HostIP); err != nil {
			return nil, fmt.Errorf("%s.hostIP: %w", field, err)
		}
	}
	proto, err := runtimeProtocol(p.Protocol)
	if err != nil {
		return nil, fmt.Errorf("%s.protocol: %w", field, err)
	}
	return &runtimeapi.PortMapping{
		Protocol:      proto,
		ContainerPort: p.ContainerPort,
		HostPort:      p.HostPort,
		HostIp:        p.HostIP,
	}, nil
}

func runtimeProtocol(p corev1.Protocol) (runtimeapi.Protocol, error) {
	switch p {
	case "", corev1.ProtocolTCP: // "" is the API default, TCP
		return runtimeapi.Protocol_TCP, nil
	case corev1.ProtocolUDP:
		return runtimeapi.Protocol_UDP, nil
	case corev1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP, nil
	}
	return 0, fmt.Errorf("unsupported value %q (want TCP, UDP or SCTP)", p)
}

// sandboxLinuxConfig is the kubelet's generatePodSandboxLinuxConfig with
// no cgroup parent: berth run lets the runtime place the pod.
func sandboxLinuxConfig(pod *corev1.Pod) (*runtimeapi.LinuxPodSandboxConfig, []string, error) {
	ns, err := namespaceOptions(pod)
	if err != nil {
		return nil, nil, err
	}
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: ns,
		Privileged:       hasPrivilegedContainer(pod),
		// The kubelet always confines the pause container with the
		// runtime's default profile, whatever the pod asks for its
		// containers: the sandbox runs no user code.
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	lc := &runtimeapi.LinuxPodSandboxConfig{SecurityContext: sc}
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return lc, podLevelWarnings(pod), nil
	}
	if psc.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
	}
	if psc.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
	}
	if psc.FSGroup != nil {
		sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
	}
	sc.SupplementalGroups = append(sc.SupplementalGroups, psc.SupplementalGroups...)
	if sc.SupplementalGroupsPolicy, err = supplementalGroupsPolicy(psc); err != nil {
		return nil, nil, err
	}
	sc.SelinuxOptions = runtimeSELinux(psc.SELinuxOptions)
	if len(psc.Sysctls) > 0 {
		lc.Sysctls = make(map[string]string, len(psc.Sysctls))
		for i, s := range psc.Sysctls {
			if s.Name == "" {
				return nil, nil, fmt.Errorf("spec.securityContext.sysctls[%d].name: required", i)
			}
			lc.Sysctls[s.Name] = s.Value
		}
	}
	return lc, podLevelWarnings(pod), nil
}

// podLevelWarnings name the pod-level fields the kubelet honours through
// machinery berth run does not have.
func podLevelWarnings(pod *corev1.Pod) []string {
	var w []string
	if pod.Spec.Resources != nil {
		w = append(w, "spec.resources: pod-level resources are not enforced (no pod cgroup); container resources are")
	}
	if len(pod.Spec.Overhead) > 0 {
		w = append(w, "spec.overhead: ignored (no pod cgroup)")
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		w = append(w, "spec.resourceClaims: ignored: dynamic resource allocation is not supported")
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.WindowsOptions != nil {
			w = append(w, "spec.securityContext.windowsOptions: ignored on Linux")
		}
		if psc.SELinuxChangePolicy != nil {
			w = append(w, "spec.securityContext.seLinuxChangePolicy: ignored: volumes are not relabelled by berth run")
		}
	}
	return w
}

// hasPrivilegedContainer: the sandbox must be privileged for any of its
// containers to be.
func hasPrivilegedContainer(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		if slices.ContainsFunc(cs, func(c corev1.Container) bool {
			return c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
		}) {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
			return true
		}
	}
	return false
}
