package network

import (
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// DefaultIfName is the pod's interface name when Attachment.IfName is "".
const DefaultIfName = "eth0"

// PortMapping is a host port forwarded to the pod (the portMappings
// capability).
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	// Protocol is "tcp", "udp" or "sctp" (any case); "" means "tcp".
	Protocol string
	// HostIP limits the mapping to one host address; "" means all.
	HostIP string
}

// Attachment is one sandbox on the pod network.
type Attachment struct {
	// ID is the sandbox id, the CNI ContainerID.
	ID string
	// NetNS is the path of the sandbox's network namespace. It may be ""
	// on Teardown when the namespace is gone.
	NetNS string
	// IfName is the pod's interface; "" means DefaultIfName.
	IfName string

	PodName, PodNamespace, PodUID string
	PortMappings                  []PortMapping
	// CgroupParent is the pod's cgroup, passed as the cgroupPath
	// capability when set.
	CgroupParent string
}

// portMapping is the JSON form of a port mapping in the portMappings
// capability, as containerd and the kubelet pass it.
type portMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// ifName returns the pod's interface name.
func (a Attachment) ifName() string {
	if a.IfName == "" {
		return DefaultIfName
	}
	return a.IfName
}

// runtimeConf returns the CNI arguments of a for the interface ifName.
func (a Attachment) runtimeConf(ifName string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: a.ID,
		NetNS:       a.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", a.PodNamespace},
			{"K8S_POD_NAME", a.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", a.ID},
			{"K8S_POD_UID", a.PodUID},
		},
		CapabilityArgs: map[string]any{},
	}
	if pm := a.portMappings(); len(pm) > 0 {
		rt.CapabilityArgs["portMappings"] = pm
	}
	if a.CgroupParent != "" {
		rt.CapabilityArgs["cgroupPath"] = a.CgroupParent
	}
	return rt
}

// portMappings returns the mappings to pass to CNI: those with a host
// port, protocol lower-cased (containerd does the same).
func (a Attachment) portMappings() []portMapping {
	var out []portMapping
	for _, p := range a.PortMappings {
		if p.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, portMapping{
			HostPort:      p.HostPort,
			ContainerPort: p.ContainerPort,
			Protocol:      proto,
			HostIP:        p.HostIP,
		})
	}
	return out
}
