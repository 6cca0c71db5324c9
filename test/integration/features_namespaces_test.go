package integration

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nsScript prints the container's namespaces and what its PID 1 runs,
// then stays up so the other containers run alongside it.
const nsScript = `echo "net=$(readlink /proc/self/ns/net)"
echo "ipc=$(readlink /proc/self/ns/ipc)"
echo "pid=$(readlink /proc/self/ns/pid)"
echo "pid1=$(tr '\0' ' ' </proc/1/cmdline)"
echo done=1
sleep 3600`

// withPID sets the PID namespace mode of a container.
func withPID(cfg *runtimeapi.ContainerConfig, mode runtimeapi.NamespaceMode) *runtimeapi.ContainerConfig {
	cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: mode},
	}
	return cfg
}

// namespacesOf runs nsScript in a new container and returns what it printed.
func (e *env) namespacesOf(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) map[string]string {
	e.t.Helper()
	id := e.runContainer(podID, pod, cfg)
	return keyValues(e.waitOutput(id, "done=1", 10*time.Second))
}

// TestFeaturesPodNamespaces checks that the containers of a pod share its
// network and IPC namespaces, and its PID namespace (with pause as PID 1)
// only when they ask for POD.
func TestFeaturesPodNamespaces(t *testing.T) {
	e := newEnv(t)
	shared, sharedID := e.startPod("pidshared", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
		}
	})
	a1 := e.namespacesOf(sharedID, shared, withPID(containerConfig("a1", nsScript), runtimeapi.NamespaceMode_POD))
	a2 := e.namespacesOf(sharedID, shared, withPID(containerConfig("a2", nsScript), runtimeapi.NamespaceMode_POD))

	own, ownID := e.startPod("pidown", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}
	})
	b1 := e.namespacesOf(ownID, own, withPID(containerConfig("b1", nsScript), runtimeapi.NamespaceMode_CONTAINER))
	b2 := e.namespacesOf(ownID, own, withPID(containerConfig("b2", nsScript), runtimeapi.NamespaceMode_CONTAINER))
	t.Logf("a1=%v\na2=%v\nb1=%v\nb2=%v", a1, a2, b1, b2)

	for _, ns := range []string{"net", "ipc", "pid"} {
		for name, kv := range map[string]map[string]string{"a1": a1, "a2": a2, "b1": b1, "b2": b2} {
			if !strings.HasPrefix(kv[ns], ns+":[") {
				t.Fatalf("%s: %s namespace reads %q", name, ns, kv[ns])
			}
		}
	}
	for _, ns := range []string{"net", "ipc"} {
		if a1[ns] != a2[ns] || b1[ns] != b2[ns] {
			t.Errorf("%s not shared within a pod: a1 %s a2 %s, b1 %s b2 %s", ns, a1[ns], a2[ns], b1[ns], b2[ns])
		}
		if a1[ns] == b1[ns] {
			t.Errorf("two pods share the %s namespace %s", ns, a1[ns])
		}
	}

	// pid POD: one namespace for the pod, owned by pause.
	if a1["pid"] != a2["pid"] {
		t.Errorf("pid POD: containers have PID namespaces %s and %s, want one", a1["pid"], a2["pid"])
	}
	for name, kv := range map[string]map[string]string{"a1": a1, "a2": a2} {
		if kv["pid1"] != "/pause" {
			t.Errorf("pid POD: PID 1 of %s runs %q, want /pause", name, kv["pid1"])
		}
	}
	// pid CONTAINER: a namespace each, the container's own process PID 1.
	if b1["pid"] == b2["pid"] || b1["pid"] == a1["pid"] {
		t.Errorf("pid CONTAINER: namespaces b1 %s b2 %s (a1 %s), want each its own", b1["pid"], b2["pid"], a1["pid"])
	}
	for name, kv := range map[string]map[string]string{"b1": b1, "b2": b2} {
		if !strings.HasPrefix(kv["pid1"], "sh -c ") {
			t.Errorf("pid CONTAINER: PID 1 of %s runs %q, want the container's sh", name, kv["pid1"])
		}
	}
	// The sandbox reports the modes it was made with.
	if got := e.podStatus(sharedID).GetLinux().GetNamespaces().GetOptions().GetPid(); got != runtimeapi.NamespaceMode_POD {
		t.Errorf("PodSandboxStatus pid mode of the shared pod = %v", got)
	}
}

// TestFeaturesHostNamespaces runs a pod in the node's network, PID and IPC
// namespaces.
func TestFeaturesHostNamespaces(t *testing.T) {
	e := newEnv(t)
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
	hostPID, _ := os.Readlink("/proc/self/ns/pid")
	hostInit, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()

	ipsBefore := e.allocatedIPs()
	hostNS := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE,
	}
	pod, podID := e.startPod("hostns", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: hostNS}
	})
	if ips := e.allocatedIPs(); len(ips) != len(ipsBefore) {
		t.Errorf("host network pod allocated IPs: before %v, after %v", ipsBefore, ips)
	}
	st := e.podStatus(podID)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("host network pod state = %v, want READY", st.State)
	}
	if ip := st.GetNetwork().GetIp(); ip != "" {
		t.Errorf("host network pod reports pod IP %q, want none", ip)
	}
	if o := st.GetLinux().GetNamespaces().GetOptions(); o.GetNetwork() != runtimeapi.NamespaceMode_NODE ||
		o.GetPid() != runtimeapi.NamespaceMode_NODE || o.GetIpc() != runtimeapi.NamespaceMode_NODE {
		t.Errorf("PodSandboxStatus namespace options = %v, want NODE for all", o)
	}

	cfg := containerConfig("host", `echo "net=$(readlink /proc/self/ns/net)"
echo "ipc=$(readlink /proc/self/ns/ipc)"
echo "pid=$(readlink /proc/self/ns/pid)"
echo "init=$(tr '\0' ' ' </proc/1/cmdline)"
echo "hostname=$(hostname)"
echo "links=$(ip -o link | cut -d: -f2 | tr -d ' ' | tr '\n' ,)"
echo done=1; sleep 3600`)
	cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: hostNS}
	id := e.runContainer(podID, pod, cfg)
	kv := keyValues(e.waitOutput(id, "done=1", 10*time.Second))
	t.Logf("%v", kv)

	if kv["net"] != hostNet || kv["ipc"] != hostIPC || kv["pid"] != hostPID {
		t.Errorf("container namespaces net %s ipc %s pid %s, want the host's %s %s %s",
			kv["net"], kv["ipc"], kv["pid"], hostNet, hostIPC, hostPID)
	}
	if want := strings.TrimSpace(strings.ReplaceAll(string(hostInit), "\x00", " ")); kv["init"] != want {
		t.Errorf("container's /proc/1/cmdline = %q, want the host's init %q", kv["init"], want)
	}
	// The host's stable interfaces; veths and bridges of concurrent tests
	// come and go.
	links := strings.Split(kv["links"], ",")
	for _, want := range []string{"eth0", "docker0"} {
		if _, err := net.InterfaceByName(want); err != nil {
			continue
		}
		found := false
		for _, l := range links {
			if l == want || strings.HasPrefix(l, want+"@") {
				found = true
			}
		}
		if !found {
			t.Errorf("host network container's links %v lack the host's %s", links, want)
		}
	}
	if kv["hostname"] != hostname {
		t.Errorf("host network container's hostname = %q, want the host's %q", kv["hostname"], hostname)
	}
}
