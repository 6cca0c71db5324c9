package translate

import (
	"maps"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sandbox returns the create config of a pod's pause container.
//
// Port mappings and DNS are not Docker's: berth runs CNI (portmap
// included) in the pause container's network namespace and writes
// resolv.conf itself. linux.resources and linux.overhead need nothing
// here either: the kubelet applies them through the pod's cgroup parent.
func Sandbox(p SandboxParams, h Host) (Result, error) {
	if err := validateSandbox(p); err != nil {
		return Result{}, err
	}
	c := p.Config
	sc := c.GetLinux().GetSecurityContext()
	b := newBuilder(h)
	b.config.Image = p.Image
	b.config.Labels = maps.Clone(p.Labels)

	if err := b.sandboxNamespaces(c); err != nil {
		return Result{}, err
	}
	var err error
	if b.hostCfg.CgroupParent, err = b.cgroupParent("config.linux.cgroup_parent", c.GetLinux().GetCgroupParent()); err != nil {
		return Result{}, err
	}
	ns := sc.GetNamespaceOptions()
	if b.hostCfg.Sysctls, err = sysctls(c.GetLinux().GetSysctls(),
		ns.GetNetwork() == runtimeapi.NamespaceMode_NODE, ns.GetIpc() == runtimeapi.NamespaceMode_NODE); err != nil {
		return Result{}, err
	}
	if err := b.applySecurity(sandboxSecurity(sc), p.ReadFile); err != nil {
		return Result{}, err
	}
	b.hostCfg.OomScoreAdj = min(max(sandboxOOMScoreAdj, h.MinOOMScoreAdj), maxOOMScoreAdj)
	return b.result(), nil
}
