package translate

import (
	"maps"
	"path"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container returns the create config of a container of the sandbox
// p.SandboxID.
func Container(p ContainerParams, h Host) (Result, error) {
	if err := validateContainer(p); err != nil {
		return Result{}, err
	}
	c := p.Config
	sc := c.GetLinux().GetSecurityContext()
	b := newBuilder(h)
	b.config.Image = p.Image
	b.config.Labels = maps.Clone(p.Labels)

	if err := b.process(c); err != nil {
		return Result{}, err
	}
	if err := b.containerNamespaces(p.SandboxID, sc.GetNamespaceOptions()); err != nil {
		return Result{}, err
	}
	csc := containerSecurity(sc)
	csc.imageUser, csc.primaryGroup = p.ImageUser, p.PrimaryGroup
	if err := b.applySecurity(csc, p.ReadFile); err != nil {
		return Result{}, err
	}
	sandboxPrivileged := p.SandboxConfig.GetLinux().GetSecurityContext().GetPrivileged()
	if err := b.containerOnlySecurity(sc, sandboxPrivileged); err != nil {
		return Result{}, err
	}
	// The container's cgroup goes under the pod's, so pod-level limits
	// and accounting include it.
	var err error
	if b.hostCfg.CgroupParent, err = b.cgroupParent("sandbox_config.linux.cgroup_parent", p.SandboxConfig.GetLinux().GetCgroupParent()); err != nil {
		return Result{}, err
	}
	if err := b.resources(c.GetLinux().GetResources()); err != nil {
		return Result{}, err
	}
	if b.hostCfg.Devices, err = devices(c.GetDevices()); err != nil {
		return Result{}, err
	}
	if b.hostCfg.DeviceRequests, err = cdiDevices(c.GetCDIDevices()); err != nil {
		return Result{}, err
	}
	if err := b.mounts(c.GetMounts(), p.EtcMounts, p.ImageVolume); err != nil {
		return Result{}, err
	}
	if p.DockerLog.Type != "" {
		b.hostCfg.LogConfig = p.DockerLog
	}
	return b.result(), nil
}

// process sets what the container runs and how it is attached.
func (b *builder) process(c *runtimeapi.ContainerConfig) error {
	// A nil Entrypoint keeps the image's; a set one also drops the
	// image's Cmd, which is what Kubernetes' command means.
	if len(c.GetCommand()) > 0 {
		b.config.Entrypoint = c.GetCommand()
	}
	if len(c.GetArgs()) > 0 {
		b.config.Cmd = c.GetArgs()
	}
	if wd := c.GetWorkingDir(); wd != "" {
		if !path.IsAbs(wd) {
			return invalidf("config.working_dir", "%q is not an absolute path", wd)
		}
		b.config.WorkingDir = wd
	}
	for i, kv := range c.GetEnvs() {
		field := indexed("config.envs", i)
		key, value := kv.GetKey(), string(kv.GetValue())
		switch {
		case key == "":
			return invalidf(field+".key", "empty")
		case strings.ContainsAny(key, "=\x00"):
			return invalidf(field+".key", "%q contains '=' or NUL", key)
		case strings.Contains(value, "\x00"):
			// exec(2) cannot pass it.
			return invalidf(field+".value", "contains NUL")
		}
		b.config.Env = append(b.config.Env, key+"="+value)
	}
	b.config.OpenStdin = c.GetStdin()
	b.config.StdinOnce = c.GetStdinOnce()
	b.config.Tty = c.GetTty()
	// What `docker create -i` sets: the streams the attach API will
	// carry.
	b.config.AttachStdin = c.GetStdin()
	b.config.AttachStdout = true
	b.config.AttachStderr = true

	signal, err := stopSignal(c.GetStopSignal())
	if err != nil {
		return err
	}
	b.config.StopSignal = signal
	return nil
}

// stopSignal returns Docker's name of s ("SIGRTMIN+3"), "" for the image's
// own. Docker stops the container with it, as the kubelet asks.
func stopSignal(s runtimeapi.Signal) (string, error) {
	if s == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return "", nil
	}
	name, ok := runtimeapi.Signal_name[int32(s)]
	if !ok {
		return "", invalidf("config.stop_signal", "unknown signal %d", int32(s))
	}
	name = strings.TrimPrefix(name, "SIGNAL_")
	name = strings.Replace(name, "PLUS", "+", 1)
	name = strings.Replace(name, "MINUS", "-", 1)
	return name, nil
}
