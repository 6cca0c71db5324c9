package translate

import (
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSandboxSysctls(t *testing.T) {
	withSysctls := func(s map[string]string, modes ...runtimeapi.NamespaceMode) func(*SandboxParams) {
		return func(p *SandboxParams) {
			p.Config.Linux.Sysctls = s
			if len(modes) == 2 {
				sns(p).Network, sns(p).Ipc = modes[0], modes[1]
			}
		}
	}
	bad := func(name string, s map[string]string, field string, modes ...runtimeapi.NamespaceMode) tcase[SandboxParams] {
		return tcase[SandboxParams]{
			name: name, edit: withSysctls(s, modes...),
			errField: "config.linux.sysctls[" + field + "]", errKind: errdefs.IsInvalidArgument,
		}
	}
	pod, node := runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE
	ok := map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0",
		"net/ipv4/conf/eth0.100/forwarding":   "1",
		"kernel.shm_rmid_forced":              "1",
		"kernel.msgmax":                       "65536",
		"kernel.sem":                          "250 32000 100 128",
		"fs.mqueue.msg_max":                   "10",
		"kernel.hostname":                     "h",
	}
	runSandbox(t, []tcase[SandboxParams]{
		{
			name: "namespaced",
			edit: withSysctls(ok),
			want: func(r *Result) { r.HostConfig.Sysctls = ok },
		},
		{
			name: "ipc ones with host network",
			edit: withSysctls(map[string]string{"kernel.shmmax": "1"}, node, pod),
			want: func(r *Result) {
				r.HostConfig.Sysctls = map[string]string{"kernel.shmmax": "1"}
				r.Config.Hostname = ""
				r.Config.NetworkDisabled = false
				r.HostConfig.NetworkMode = "host"
				r.HostConfig.UTSMode = "host"
			},
		},
		{
			name: "net ones with host IPC",
			edit: withSysctls(map[string]string{"net.core.somaxconn": "1024"}, pod, node),
			want: func(r *Result) {
				r.HostConfig.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
				r.HostConfig.IpcMode = "host"
			},
		},
		bad("net with host network", map[string]string{"net.core.somaxconn": "1"}, `"net.core.somaxconn"`, node, pod),
		bad("slash form net with host network", map[string]string{"net/core/somaxconn": "1"}, `"net/core/somaxconn"`, node, pod),
		bad("uts with host network", map[string]string{"kernel.hostname": "x"}, `"kernel.hostname"`, node, pod),
		bad("kernel.shm with host IPC", map[string]string{"kernel.shmmax": "1"}, `"kernel.shmmax"`, pod, node),
		bad("kernel.msg with host IPC", map[string]string{"kernel.msgmnb": "1"}, `"kernel.msgmnb"`, pod, node),
		bad("kernel.sem with host IPC", map[string]string{"kernel.sem": "1 2 3 4"}, `"kernel.sem"`, pod, node),
		bad("fs.mqueue with host IPC", map[string]string{"fs.mqueue.queues_max": "1"}, `"fs.mqueue.queues_max"`, pod, node),
		bad("not namespaced", map[string]string{"vm.swappiness": "1"}, `"vm.swappiness"`),
		bad("kernel.semx is not kernel.sem", map[string]string{"kernel.semx": "1"}, `"kernel.semx"`),
		bad("empty name", map[string]string{"": "1"}, `""`),
		bad("newline in value", map[string]string{"net.core.somaxconn": "1\nkernel.x=1"}, `"net.core.somaxconn"`),
		bad("plus in value", map[string]string{"net.core.somaxconn": "+1"}, `"net.core.somaxconn"`),
		bad("empty element", map[string]string{"net..core": "1"}, `"net..core"`),
		bad("traversal", map[string]string{"net/../../kernel/x": "1"}, `"net/../../kernel/x"`),
		bad("trailing separator", map[string]string{"net.core.": "1"}, `"net.core."`),
		bad("space", map[string]string{"net.core x": "1"}, `"net.core x"`),
		bad("first bad key in sorted order", map[string]string{"vm.b": "1", "vm.a": "1"}, `"vm.a"`),
	})
}

func TestNormalizeSysctl(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":               "net.ipv4.ip_forward",
		"net/ipv4/ip_forward":               "net.ipv4.ip_forward",
		"net/ipv4/conf/eth0.100/forwarding": "net.ipv4.conf.eth0/100.forwarding",
		"net.ipv4.conf.eth0/100.forwarding": "net.ipv4.conf.eth0/100.forwarding",
		"kernel":                            "kernel",
	} {
		if got := normalizeSysctl(in); got != want {
			t.Errorf("normalizeSysctl(%q) = %q, want %q", in, got, want)
		}
	}
}
