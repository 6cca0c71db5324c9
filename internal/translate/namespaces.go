package translate

import (
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const namespaceOptionsField = "config.linux.security_context.namespace_options"

// sandboxNamespaces sets the pause container's namespaces: it owns the
// pod's network, IPC and UTS namespaces, which containers then join.
func (b *builder) sandboxNamespaces(c *runtimeapi.PodSandboxConfig) error {
	ns := c.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if err := checkNamespaces(ns); err != nil {
		return err
	}
	if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE {
		b.hostCfg.NetworkMode = network.NetworkHost
		// The pod shares the node's hostname too; Docker refuses a
		// Hostname with host UTS, so none is set.
		b.hostCfg.UTSMode = "host"
	} else {
		// berth runs CNI in this container's network namespace itself.
		// NetworkDisabled makes dockerd skip building its own network
		// sandbox, which is most of the time a start takes.
		b.hostCfg.NetworkMode = network.NetworkNone
		b.config.NetworkDisabled = true
		b.config.Hostname = c.GetHostname()
	}
	if ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
		b.hostCfg.IpcMode = container.IPCModeHost
	} else {
		// Docker lets other containers join only a "shareable" IPC
		// namespace.
		b.hostCfg.IpcMode = container.IPCModeShareable
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		b.hostCfg.PidMode = "host"
	}
	return nil
}

// containerNamespaces joins the pod's namespaces through the pause
// container sandboxID, or the node's.
func (b *builder) containerNamespaces(sandboxID string, ns *runtimeapi.NamespaceOption) error {
	if err := checkNamespaces(ns); err != nil {
		return err
	}
	joinSandbox := "container:" + sandboxID

	switch ns.GetNetwork() {
	case runtimeapi.NamespaceMode_POD:
		// Docker then shares the sandbox's hostname as well; it refuses
		// a Hostname of our own with this mode, so none is set.
		b.hostCfg.NetworkMode = container.NetworkMode(joinSandbox)
	case runtimeapi.NamespaceMode_NODE:
		b.hostCfg.NetworkMode = network.NetworkHost
		b.hostCfg.UTSMode = "host"
	case runtimeapi.NamespaceMode_CONTAINER:
		// Pod networking is set up once, on the sandbox; a container
		// of its own network would have no interface but lo.
		return notImplementedf(namespaceOptionsField+".network", "CONTAINER: a container network namespace of its own is not supported")
	}

	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		b.hostCfg.PidMode = container.PidMode(joinSandbox)
	case runtimeapi.NamespaceMode_CONTAINER:
		// Docker's default: a PID namespace of its own.
	case runtimeapi.NamespaceMode_NODE:
		b.hostCfg.PidMode = "host"
	case runtimeapi.NamespaceMode_TARGET:
		if ns.GetTargetId() == "" {
			return invalidf(namespaceOptionsField+".target_id", "required with pid TARGET")
		}
		b.hostCfg.PidMode = container.PidMode("container:" + ns.GetTargetId())
	}

	switch ns.GetIpc() {
	case runtimeapi.NamespaceMode_POD:
		b.hostCfg.IpcMode = container.IpcMode(joinSandbox)
	case runtimeapi.NamespaceMode_NODE:
		b.hostCfg.IpcMode = container.IPCModeHost
	case runtimeapi.NamespaceMode_CONTAINER:
		b.hostCfg.IpcMode = container.IPCModePrivate
	}
	return nil
}

// checkNamespaces validates what the sandbox and its containers share:
// known modes, TARGET only for PID (as the CRI says), and no user namespace.
func checkNamespaces(ns *runtimeapi.NamespaceOption) error {
	for _, m := range []struct {
		name string
		mode runtimeapi.NamespaceMode
	}{
		{"network", ns.GetNetwork()},
		{"pid", ns.GetPid()},
		{"ipc", ns.GetIpc()},
	} {
		field := namespaceOptionsField + "." + m.name
		if err := checkNamespaceMode(field, m.mode); err != nil {
			return err
		}
		if m.mode == runtimeapi.NamespaceMode_TARGET && m.name != "pid" {
			return invalidf(field, "TARGET is only valid for pid")
		}
	}
	// Docker's user namespaces are daemon-wide (userns-remap); it cannot
	// give one pod a namespace with mappings of its own. Nil means the
	// node's, as every kubelet that does not use the field intends.
	if u := ns.GetUsernsOptions(); u != nil && u.GetMode() != runtimeapi.NamespaceMode_NODE {
		return notImplementedf(namespaceOptionsField+".userns_options.mode", "%s: Docker cannot give a pod its own user namespace", u.GetMode())
	}
	return nil
}
