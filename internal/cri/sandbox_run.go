package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/naming"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/berth-project/berth/internal/translate"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cleanupTimeout bounds rollback work, which runs on a fresh context: the
// request's may be what was cancelled.
const cleanupTimeout = 30 * time.Second

// RunPodSandbox creates and starts the pause container, then sets up its
// network. The sandbox is READY only once the network is: a crash in between
// leaves a NOTREADY sandbox that Stop/Remove clean up, never a READY one
// without an IP.
func (s *Service) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, retErr error) {
	cfg := req.GetConfig()
	if err := validateSandboxConfig(cfg); err != nil {
		return nil, err
	}
	if h := req.GetRuntimeHandler(); h != "" {
		return nil, fmt.Errorf("runtime_handler %q: only the default handler exists: %w", h, errdefs.ErrInvalidArgument)
	}
	if err := s.ensurePauseImage(ctx); err != nil {
		return nil, err
	}
	labels, err := naming.SandboxLabels(cfg, s.now().UnixNano())
	if err != nil {
		return nil, err
	}
	tr, err := translate.Sandbox(translate.SandboxParams{Config: cfg, Image: s.pauseImage, Labels: labels, ReadFile: readProfile}, s.host)
	if err != nil {
		return nil, err
	}
	for _, w := range tr.Warnings {
		s.log.WarnContext(ctx, "sandbox config not honoured exactly", "pod", podRef(cfg.GetMetadata()), "warning", w)
	}
	name := naming.SandboxName(cfg.GetMetadata())
	id, err := s.create(ctx, client.ContainerCreateOptions{Name: name, Config: tr.Config, HostConfig: tr.HostConfig})
	if err != nil {
		if errdefs.IsNotFound(err) {
			s.pauseSeen.Store(false)
			return nil, fmt.Errorf("create sandbox container %s: pause image %s: %w", name, s.pauseImage, errors.Join(errdefs.ErrFailedPrecondition, err))
		}
		return nil, fmt.Errorf("create sandbox container %s: %w", name, err)
	}
	hostNetwork := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
	cp := sandbox.Checkpoint{
		ID: id, Name: cfg.GetMetadata().GetName(), Namespace: cfg.GetMetadata().GetNamespace(),
		UID: cfg.GetMetadata().GetUid(), HostNetwork: hostNetwork,
		PortMappings: portMappings(cfg.GetPortMappings()), CgroupParent: cfg.GetLinux().GetCgroupParent(),
	}
	networkAttempted := false
	defer func() {
		if retErr == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if networkAttempted {
			if err := s.network.Teardown(cctx, attachment(cp)); err != nil {
				s.log.ErrorContext(cctx, "roll back sandbox network", "sandbox", id, "error", err)
			}
		}
		if _, err := s.docker.ContainerRemove(cctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			s.log.ErrorContext(cctx, "roll back sandbox container", "sandbox", id, "error", err)
		}
		if err := s.sandboxes.Remove(id); err != nil {
			s.log.ErrorContext(cctx, "roll back sandbox checkpoint", "sandbox", id, "error", err)
		}
	}()
	if err := s.sandboxes.Write(cp); err != nil {
		return nil, err
	}
	if _, err := s.docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("start sandbox container %s: %w", id, err)
	}
	if hostNetwork {
		// The pause container mounts none of the /etc files; only the
		// containers created after this call do.
		if err := s.writeEtc(cp, cfg, nil); err != nil {
			return nil, err
		}
		cp.NetworkReady = true
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, s.sandboxes.Write(cp)
	}
	ins, err := s.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect sandbox container %s: %w", id, err)
	}
	if ins.Container.State == nil || ins.Container.State.Pid == 0 {
		return nil, fmt.Errorf("sandbox container %s is not running: %w", id, errdefs.ErrUnknown)
	}
	cp.NetNS = fmt.Sprintf("/proc/%d/ns/net", ins.Container.State.Pid)
	networkAttempted = true
	res, err := s.network.Setup(ctx, attachment(cp))
	if err != nil {
		return nil, fmt.Errorf("set up network of sandbox %s: %w", id, err)
	}
	cp.IPs = res.IPs
	if err := s.writeEtc(cp, cfg, res.IPs); err != nil {
		return nil, err
	}
	cp.NetworkReady = true
	if err := s.sandboxes.Write(cp); err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

func validateSandboxConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if cfg == nil {
		return fmt.Errorf("config: missing: %w", errdefs.ErrInvalidArgument)
	}
	m := cfg.GetMetadata()
	switch {
	case m == nil:
		return fmt.Errorf("config.metadata: missing: %w", errdefs.ErrInvalidArgument)
	case m.GetName() == "":
		return fmt.Errorf("config.metadata.name: empty: %w", errdefs.ErrInvalidArgument)
	case m.GetNamespace() == "":
		return fmt.Errorf("config.metadata.namespace: empty: %w", errdefs.ErrInvalidArgument)
	case m.GetUid() == "":
		return fmt.Errorf("config.metadata.uid: empty: %w", errdefs.ErrInvalidArgument)
	}
	for field, v := range map[string]string{"name": m.GetName(), "namespace": m.GetNamespace(), "uid": m.GetUid()} {
		// "_" separates the fields of a Docker name; "/" is not allowed in one.
		if strings.ContainsAny(v, "_/") {
			return fmt.Errorf("config.metadata.%s: %q may not contain '_' or '/': %w", field, v, errdefs.ErrInvalidArgument)
		}
	}
	if d := cfg.GetLogDirectory(); d != "" {
		if err := checkAbsClean("config.log_directory", d); err != nil {
			return err
		}
	}
	if err := sandbox.ValidateResolvConf(cfg.GetDnsConfig()); err != nil {
		return err
	}
	return nil
}

// checkAbsClean refuses a path that is relative or climbs with "..": paths
// from a request are never trusted.
func checkAbsClean(field, p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s: %q is not absolute: %w", field, p, errdefs.ErrInvalidArgument)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%s: %q contains '..': %w", field, p, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// ensurePauseImage checks the pause image is there, asking Docker only
// until it once was: a create from a pause image removed since then fails
// with NotFound, which clears the mark.
func (s *Service) ensurePauseImage(ctx context.Context) error {
	if s.pauseSeen.Load() {
		return nil
	}
	if _, err := s.docker.ImageInspect(ctx, s.pauseImage); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("pause image %s is not in Docker (build it with `make images`): %w", s.pauseImage, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("inspect pause image %s: %w", s.pauseImage, err)
	}
	s.pauseSeen.Store(true)
	return nil
}

// writeEtc writes the sandbox's resolv.conf, hosts and hostname.
func (s *Service) writeEtc(cp sandbox.Checkpoint, cfg *runtimeapi.PodSandboxConfig, ips []string) error {
	hostResolv, err := os.ReadFile(s.hostResolvConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read host resolv.conf: %w", err)
	}
	hostname := cfg.GetHostname()
	files := sandbox.EtcFiles{
		ResolvConf: sandbox.ResolvConfFor(cfg.GetDnsConfig(), hostResolv),
		Hosts:      sandbox.HostsFor(hostname, ips),
		Hostname:   []byte(hostname + "\n"),
	}
	if cp.HostNetwork {
		if h, err := os.ReadFile("/etc/hosts"); err == nil {
			files.Hosts = h
		}
		if h, err := os.Hostname(); err == nil {
			files.Hostname = []byte(h + "\n")
		}
	}
	_, err = s.sandboxes.WriteEtc(cp.ID, files)
	return err
}

func portMappings(pms []*runtimeapi.PortMapping) []sandbox.PortMapping {
	var out []sandbox.PortMapping
	for _, pm := range pms {
		if pm.GetHostPort() <= 0 {
			continue
		}
		proto := strings.ToLower(pm.GetProtocol().String())
		out = append(out, sandbox.PortMapping{
			HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(), Protocol: proto, HostIP: pm.GetHostIp(),
		})
	}
	return out
}

func attachment(cp sandbox.Checkpoint) network.Attachment {
	a := network.Attachment{
		ID: cp.ID, NetNS: cp.NetNS, IfName: "eth0",
		PodName: cp.Name, PodNamespace: cp.Namespace, PodUID: cp.UID, CgroupParent: cp.CgroupParent,
	}
	for _, pm := range cp.PortMappings {
		a.PortMappings = append(a.PortMappings, network.PortMapping{
			HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, Protocol: pm.Protocol, HostIP: pm.HostIP,
		})
	}
	return a
}

func podRef(m *runtimeapi.PodSandboxMetadata) string {
	return m.GetNamespace() + "/" + m.GetName()
}
