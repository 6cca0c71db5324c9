package translate

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func baseContainer() ContainerParams {
	return ContainerParams{
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox:1.37"},
		},
		SandboxConfig: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "uid1"},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/burstable/pod1"},
		},
		SandboxID: "sb1",
		Image:     "sha256:abc",
		Labels:    map[string]string{"io.berth.kind": "container"},
	}
}

// baseContainerResult is what baseContainer translates to: the pod's
// namespaces joined, no masked paths (the CRI config lists none) and the
// pod's cgroup parent.
func baseContainerResult() Result {
	return Result{
		Config: &container.Config{
			Image:        "sha256:abc",
			Labels:       map[string]string{"io.berth.kind": "container"},
			Healthcheck:  noHealthcheck(),
			AttachStdout: true,
			AttachStderr: true,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   "container:sb1",
			PidMode:       "container:sb1",
			IpcMode:       "container:sb1",
			MaskedPaths:   []string{},
			ReadonlyPaths: []string{},
			Resources:     container.Resources{CgroupParent: "/kubepods/burstable/pod1"},
			// An unset CRI seccomp profile means unconfined.
			SecurityOpt: []string{"seccomp=unconfined"},
		},
	}
}

func runContainer(t *testing.T, cases []tcase[ContainerParams]) {
	t.Helper()
	run(t, cases, baseContainer, baseContainerResult, Container)
}

func TestContainerValidation(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{
		{name: "base"},
		{
			name:     "nil config",
			edit:     func(p *ContainerParams) { p.Config = nil },
			errField: "config", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "nil metadata",
			edit:     func(p *ContainerParams) { p.Config.Metadata = nil },
			errField: "config.metadata", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "empty name",
			edit:     func(p *ContainerParams) { p.Config.Metadata.Name = "" },
			errField: "config.metadata.name", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "nil image",
			edit:     func(p *ContainerParams) { p.Config.Image = nil },
			errField: "config.image.image", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "empty image",
			edit:     func(p *ContainerParams) { p.Config.Image.Image = "" },
			errField: "config.image.image", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "resolved image is used, not the CRI reference",
			edit: func(p *ContainerParams) { p.Image = "sha256:def" },
			want: func(r *Result) { r.Config.Image = "sha256:def" },
		},
		{
			name: "nil sandbox config is an unprivileged sandbox without cgroup parent",
			edit: func(p *ContainerParams) { p.SandboxConfig = nil },
			want: func(r *Result) { r.HostConfig.CgroupParent = "" },
		},
	})
}

func TestContainerInternalErrors(t *testing.T) {
	// Not CRI fields: berth's own bugs, so no InvalidArgument to the
	// kubelet.
	for name, edit := range map[string]func(*ContainerParams){
		"no resolved image": func(p *ContainerParams) { p.Image = "" },
		"no sandbox ID":     func(p *ContainerParams) { p.SandboxID = "" },
		"bad etc mount": func(p *ContainerParams) {
			p.EtcMounts = []Mount{{HostPath: "/a:b", ContainerPath: "/etc/hosts"}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := baseContainer()
			edit(&p)
			_, err := Container(p, fullHost())
			if err == nil || errdefs.IsInvalidArgument(err) {
				t.Fatalf("error = %v, want a plain error", err)
			}
		})
	}
}

func TestContainerLabelsAreCopied(t *testing.T) {
	p := baseContainer()
	r, err := Container(p, fullHost())
	if err != nil {
		t.Fatal(err)
	}
	r.Config.Labels["x"] = "y"
	if _, ok := p.Labels["x"]; ok {
		t.Error("result shares the caller's label map")
	}
}

func TestContainerProcess(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "Docker's own log bounded",
			edit: func(p *ContainerParams) {
				p.DockerLog = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
			},
			want: func(r *Result) {
				r.HostConfig.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
			},
		},
		{
			name: "command and args",
			edit: func(p *ContainerParams) {
				p.Config.Command = []string{"/bin/sh", "-c"}
				p.Config.Args = []string{"echo hi"}
			},
			want: func(r *Result) {
				r.Config.Entrypoint = []string{"/bin/sh", "-c"}
				r.Config.Cmd = []string{"echo hi"}
			},
		},
		{
			name: "args only keep the image's entrypoint",
			edit: func(p *ContainerParams) { p.Config.Args = []string{"--flag"} },
			want: func(r *Result) { r.Config.Cmd = []string{"--flag"} },
		},
		{
			name: "working dir",
			edit: func(p *ContainerParams) { p.Config.WorkingDir = "/srv" },
			want: func(r *Result) { r.Config.WorkingDir = "/srv" },
		},
		{
			name:     "relative working dir",
			edit:     func(p *ContainerParams) { p.Config.WorkingDir = "srv" },
			errField: "config.working_dir", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "env",
			edit: func(p *ContainerParams) {
				p.Config.Envs = []*runtimeapi.KeyValue{
					{Key: "A", Value: []byte("1")},
					{Key: "EMPTY"},
					{Key: "B", Value: []byte("x=y")},
				}
			},
			want: func(r *Result) { r.Config.Env = []string{"A=1", "EMPTY=", "B=x=y"} },
		},
		{
			name: "env empty key",
			edit: func(p *ContainerParams) {
				p.Config.Envs = []*runtimeapi.KeyValue{{Key: "A"}, {Value: []byte("v")}}
			},
			errField: "config.envs[1].key", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "env key with =",
			edit:     func(p *ContainerParams) { p.Config.Envs = []*runtimeapi.KeyValue{{Key: "A=B"}} },
			errField: "config.envs[0].key", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "env value with NUL",
			edit:     func(p *ContainerParams) { p.Config.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte("a\x00b")}} },
			errField: "config.envs[0].value", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "stdin, stdin_once, tty",
			edit: func(p *ContainerParams) {
				p.Config.Stdin = true
				p.Config.StdinOnce = true
				p.Config.Tty = true
			},
			want: func(r *Result) {
				r.Config.OpenStdin = true
				r.Config.StdinOnce = true
				r.Config.Tty = true
				r.Config.AttachStdin = true
			},
		},
		{
			name: "stop signal",
			edit: func(p *ContainerParams) { p.Config.StopSignal = runtimeapi.Signal_SIGNAL_SIGUSR1 },
			want: func(r *Result) { r.Config.StopSignal = "SIGUSR1" },
		},
		{
			name: "stop signal realtime plus",
			edit: func(p *ContainerParams) { p.Config.StopSignal = runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3 },
			want: func(r *Result) { r.Config.StopSignal = "SIGRTMIN+3" },
		},
		{
			name: "stop signal realtime minus",
			edit: func(p *ContainerParams) { p.Config.StopSignal = runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS14 },
			want: func(r *Result) { r.Config.StopSignal = "SIGRTMAX-14" },
		},
		{
			name:     "unknown stop signal",
			edit:     func(p *ContainerParams) { p.Config.StopSignal = 999 },
			errField: "config.stop_signal", errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestContainerNamespaces(t *testing.T) {
	const nsField = "config.linux.security_context.namespace_options"
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "all POD explicitly",
			edit: func(p *ContainerParams) { cns(p) },
		},
		{
			name: "node network, pid, ipc",
			edit: func(p *ContainerParams) {
				ns := cns(p)
				ns.Network = runtimeapi.NamespaceMode_NODE
				ns.Pid = runtimeapi.NamespaceMode_NODE
				ns.Ipc = runtimeapi.NamespaceMode_NODE
			},
			want: func(r *Result) {
				r.HostConfig.NetworkMode = "host"
				r.HostConfig.UTSMode = "host"
				r.HostConfig.PidMode = "host"
				r.HostConfig.IpcMode = "host"
			},
		},
		{
			name: "pid CONTAINER is private",
			edit: func(p *ContainerParams) { cns(p).Pid = runtimeapi.NamespaceMode_CONTAINER },
			want: func(r *Result) { r.HostConfig.PidMode = "" },
		},
		{
			name: "pid TARGET",
			edit: func(p *ContainerParams) {
				cns(p).Pid = runtimeapi.NamespaceMode_TARGET
				cns(p).TargetId = "target1"
			},
			want: func(r *Result) { r.HostConfig.PidMode = "container:target1" },
		},
		{
			name:     "pid TARGET without target_id",
			edit:     func(p *ContainerParams) { cns(p).Pid = runtimeapi.NamespaceMode_TARGET },
			errField: nsField + ".target_id", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "ipc CONTAINER is private",
			edit: func(p *ContainerParams) { cns(p).Ipc = runtimeapi.NamespaceMode_CONTAINER },
			want: func(r *Result) { r.HostConfig.IpcMode = "private" },
		},
		{
			name:     "network CONTAINER",
			edit:     func(p *ContainerParams) { cns(p).Network = runtimeapi.NamespaceMode_CONTAINER },
			errField: nsField + ".network", errKind: errdefs.IsNotImplemented,
		},
		{
			name:     "network TARGET",
			edit:     func(p *ContainerParams) { cns(p).Network = runtimeapi.NamespaceMode_TARGET },
			errField: nsField + ".network", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "ipc TARGET",
			edit:     func(p *ContainerParams) { cns(p).Ipc = runtimeapi.NamespaceMode_TARGET },
			errField: nsField + ".ipc", errKind: errdefs.IsInvalidArgument,
		},
		{
			name:     "unknown pid mode",
			edit:     func(p *ContainerParams) { cns(p).Pid = 42 },
			errField: nsField + ".pid", errKind: errdefs.IsInvalidArgument,
		},
		{
			name: "user namespace NODE",
			edit: func(p *ContainerParams) {
				cns(p).UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
			},
		},
		{
			name: "user namespace POD",
			edit: func(p *ContainerParams) {
				cns(p).UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}
			},
			errField: nsField + ".userns_options.mode", errKind: errdefs.IsNotImplemented,
		},
	})
}

func TestContainerCDIDevices(t *testing.T) {
	runContainer(t, []tcase[ContainerParams]{
		{
			name: "qualified names",
			edit: func(p *ContainerParams) {
				p.Config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "nvidia.com/gpu=0"}, {Name: "vendor.com/net=all"}}
			},
			want: func(r *Result) {
				r.HostConfig.DeviceRequests = []container.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"nvidia.com/gpu=0", "vendor.com/net=all"}}}
			},
		},
		{
			name:     "unqualified name",
			edit:     func(p *ContainerParams) { p.Config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "gpu0"}} },
			errField: "config.CDI_devices[0].name", errKind: errdefs.IsInvalidArgument,
		},
	})
}

func TestErrorsWrapReadError(t *testing.T) {
	readErr := errors.New("boom")
	p := baseContainer()
	csc(&p).Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/p.json"}
	p.ReadFile = func(string) ([]byte, error) { return nil, readErr }
	_, err := Container(p, fullHost())
	if !errors.Is(err, readErr) || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("error %v wraps neither the read error nor InvalidArgument", err)
	}
}
