package network

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// rollbackTimeout bounds the DEL run after a failed ADD.
const rollbackTimeout = 2 * time.Minute

// Result is what Setup gives the pod.
type Result struct {
	// IPs are the pod's addresses without prefix length: the first IPv4
	// first, then the others in the order the plugins returned them.
	IPs []string
	// NetworkName is the name of the network the pod joined.
	NetworkName string
}

// Setup attaches the sandbox a to the pod network (ADD): "lo" up first,
// then the network of the current config. If anything fails it runs DEL
// for what it started before returning the error.
func (m *Manager) Setup(ctx context.Context, a Attachment) (_ Result, retErr error) {
	if err := a.validate(); err != nil {
		return Result{}, fmt.Errorf("set up network for sandbox %s: %w", a.ID, err)
	}
	if a.NetNS == "" {
		return Result{}, fmt.Errorf("set up network for sandbox %s: no network namespace", a.ID)
	}
	cfg, err := loadConfig(m.confDir)
	if err != nil {
		return Result{}, fmt.Errorf("set up network for sandbox %s: %w", a.ID, err)
	}
	if err := m.checkPlugins(cfg); err != nil {
		return Result{}, fmt.Errorf("set up network %q for sandbox %s: %w", cfg.list.Name, a.ID, err)
	}

	// On failure, DEL every network whose ADD started: an ADD that failed
	// half-way leaves no cached result, so DEL gets the same arguments.
	var started []*libcni.NetworkConfigList
	defer func() {
		if retErr == nil {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		for _, list := range slices.Backward(started) {
			if err := m.del(rctx, list, a.runtimeConf(a.ifName())); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("roll back: %w", err))
			}
		}
	}()

	if err := m.loopbackUp(a.NetNS); err != nil {
		return Result{}, fmt.Errorf("set up network for sandbox %s: %w", a.ID, err)
	}
	started = append(started, cfg.list)
	res, err := m.cni.AddNetworkList(ctx, cfg.list, a.runtimeConf(a.ifName()))
	if err != nil {
		return Result{}, fmt.Errorf("set up network %q for sandbox %s: %w", cfg.list.Name, a.ID, err)
	}
	ips, err := podIPs(res, a.ifName())
	if err != nil {
		return Result{}, fmt.Errorf("set up network %q for sandbox %s: %w", cfg.list.Name, a.ID, err)
	}
	return Result{IPs: ips, NetworkName: cfg.list.Name}, nil
}

// del runs DEL of list for rt.
func (m *Manager) del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("tear down network %q for sandbox %s: %w", list.Name, rt.ContainerID, err)
	}
	return nil
}

// validate checks what the plugins would otherwise reject less clearly.
func (a Attachment) validate() error {
	if a.ID == "" {
		return errors.New("no sandbox id")
	}
	for _, p := range a.portMappings() {
		switch p.Protocol {
		case "tcp", "udp", "sctp":
		default:
			return fmt.Errorf("port mapping %d: unknown protocol %q", p.HostPort, p.Protocol)
		}
	}
	return nil
}

// podIPs returns the addresses a CNI result gives the pod's interface
// ifName, the first IPv4 address first. Addresses not tied to an interface
// count as the pod's.
func podIPs(res types.Result, ifName string) ([]string, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert result: %w", err)
	}
	var ips []string
	firstV4 := -1
	for _, ipc := range r.IPs {
		if ipc == nil || ipc.Address.IP == nil {
			continue
		}
		if i := ipc.Interface; i != nil && *i >= 0 && *i < len(r.Interfaces) {
			iface := r.Interfaces[*i]
			if iface.Name != ifName || iface.Sandbox == "" {
				continue
			}
		}
		if firstV4 < 0 && ipc.Address.IP.To4() != nil {
			firstV4 = len(ips)
		}
		ips = append(ips, ipc.Address.IP.String())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no IP address for interface %s in the result", ifName)
	}
	if firstV4 > 0 {
		v4 := ips[firstV4]
		copy(ips[1:firstV4+1], ips[:firstV4])
		ips[0] = v4
	}
	return ips, nil
}
