package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestFeaturesHostPort serves a file from a pod on a host port, reached from
// the host at 127.0.0.1 (CNI portmap DNATs locally made connections too),
// and checks the port is closed once the sandbox is stopped.
func TestFeaturesHostPort(t *testing.T) {
	e := newEnv(t)
	hostPort := freePort(t)
	pod, podID := e.startPod("web", func(c *runtimeapi.PodSandboxConfig) {
		c.PortMappings = []*runtimeapi.PortMapping{{
			Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: int32(hostPort),
		}}
	})
	body := fmt.Sprintf("hello from %s %d\n", t.Name(), hostPort)
	id := e.runContainer(podID, pod, containerConfig("httpd",
		fmt.Sprintf("mkdir /www && echo '%s' >/www/index.html && echo ready && exec httpd -f -p 8080 -h /www", strings.TrimSpace(body))))
	e.waitOutput(id, "ready", 10*time.Second)

	if rules := natRulesFor(t, hostPort); len(rules) == 0 {
		t.Errorf("no NAT rule mentions host port %d", hostPort)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)
	hc := &http.Client{Timeout: 2 * time.Second}
	var got string
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := hc.Get(url)
		if err != nil {
			lastErr = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			got = string(b)
			break
		}
		lastErr = fmt.Errorf("status %s, body %q, read error %v", resp.Status, b, err)
	}
	if got != body {
		t.Fatalf("GET %s = %q (last error %v), want %q", url, got, lastErr, body)
	}

	if _, err := e.rt.StopPodSandbox(e.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	// Nothing is forwarded any more: a listener of the host's own on the
	// port gets the connection.
	addr := fmt.Sprintf("127.0.0.1:%d", hostPort)
	if dialable(addr) {
		t.Errorf("host port %s still accepts connections after StopPodSandbox", addr)
	}
	if !reachesHostListener(t, hostPort) {
		t.Errorf("after StopPodSandbox, connections to %s still do not reach the host", addr)
	}
	if rules := natRulesFor(t, hostPort); len(rules) > 0 {
		t.Errorf("after StopPodSandbox, NAT rules for port %d remain:\n%s", hostPort, strings.Join(rules, "\n"))
	}
}

// reachesHostListener listens on 127.0.0.1:port and reports whether a
// connection to it arrives there.
func reachesHostListener(t *testing.T, port int) bool {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Errorf("listen on host port %d: %v", port, err)
		return false
	}
	defer l.Close()
	accepted := make(chan struct{})
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	if !dialable(l.Addr().String()) {
		return false
	}
	select {
	case <-accepted:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// natRulesFor lists the iptables NAT rules that mention port.
func natRulesFor(t *testing.T, port int) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, fmt.Sprintf("--dport %d ", port)) || strings.HasSuffix(line, fmt.Sprintf("--dport %d", port)) {
			rules = append(rules, line)
		}
	}
	return rules
}

// TestFeaturesDNSAndHostname checks the pod's resolv.conf, hostname and
// hosts file, with and without a DNS config.
func TestFeaturesDNSAndHostname(t *testing.T) {
	e := newEnv(t)
	const script = `echo "hostname=$(hostname)"; echo "etchostname=$(cat /etc/hostname)"
echo ---resolv; cat /etc/resolv.conf; echo ---hosts; cat /etc/hosts; echo ---end`
	sections := func(out string) map[string]string {
		m := map[string]string{}
		for _, name := range []string{"resolv", "hosts"} {
			_, rest, _ := strings.Cut(out, "---"+name+"\n")
			m[name], _, _ = strings.Cut(rest, "---")
		}
		return m
	}

	dns := &runtimeapi.DNSConfig{
		Servers:  []string{"10.96.0.10", "192.0.2.53"},
		Searches: []string{"berth-it.svc.cluster.local", "svc.cluster.local", "cluster.local"},
		Options:  []string{"ndots:5", "timeout:2"},
	}
	pod, podID := e.startPod("dnspod", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig = dns })
	podIP := e.podStatus(podID).GetNetwork().GetIp()
	st, out := e.runToExit(podID, pod, containerConfig("dns", script))
	if st.ExitCode != 0 {
		t.Fatalf("exit code %d:\n%s", st.ExitCode, out)
	}
	kv, sec := keyValues(out), sections(out)
	wantResolv := "search berth-it.svc.cluster.local svc.cluster.local cluster.local\n" +
		"nameserver 10.96.0.10\nnameserver 192.0.2.53\noptions ndots:5 timeout:2\n"
	if sec["resolv"] != wantResolv {
		t.Errorf("resolv.conf =\n%s\nwant\n%s", sec["resolv"], wantResolv)
	}
	if kv["hostname"] != "dnspod" || kv["etchostname"] != "dnspod" {
		t.Errorf("hostname %q, /etc/hostname %q, want dnspod", kv["hostname"], kv["etchostname"])
	}
	if podIP == "" || !hasHostsEntry(sec["hosts"], podIP, "dnspod") {
		t.Errorf("/etc/hosts lacks %q with dnspod:\n%s", podIP, sec["hosts"])
	}
	if !hasHostsEntry(sec["hosts"], "127.0.0.1", "localhost") {
		t.Errorf("/etc/hosts lacks localhost:\n%s", sec["hosts"])
	}

	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	plain, plainID := e.startPod("plainpod", nil)
	_, out = e.runToExit(plainID, plain, containerConfig("dns", script))
	if got := sections(out)["resolv"]; got != string(hostResolv) {
		t.Errorf("pod without dns_config has resolv.conf\n%s\nwant the host's\n%s", got, hostResolv)
	}
}

// hasHostsEntry reports whether hosts maps ip to name.
func hasHostsEntry(hosts, ip, name string) bool {
	for _, line := range strings.Split(hosts, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != ip {
			continue
		}
		for _, n := range f[1:] {
			if n == name {
				return true
			}
		}
	}
	return false
}

// TestFeaturesSysctls sets namespaced sysctls of the network and IPC
// namespaces on the sandbox and reads them in a container.
func TestFeaturesSysctls(t *testing.T) {
	e := newEnv(t)
	read := func(name string) string {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	want := map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}
	for name, v := range want {
		if read(name) == v {
			t.Fatalf("host's %s is already %s: the test could not tell", name, v)
		}
	}
	pod, podID := e.startPod("sysctl", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = want })
	st, out := e.runToExit(podID, pod, containerConfig("read",
		`echo "port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"; echo "shm=$(cat /proc/sys/kernel/shm_rmid_forced)"`))
	kv := keyValues(out)
	if st.ExitCode != 0 || kv["port"] != "0" || kv["shm"] != "1" {
		t.Errorf("exit %d; container sees ip_unprivileged_port_start=%q shm_rmid_forced=%q, want 0 and 1:\n%s", st.ExitCode, kv["port"], kv["shm"], out)
	}
	// The host's own values are untouched.
	if read("net.ipv4.ip_unprivileged_port_start") == "0" || read("kernel.shm_rmid_forced") == "1" {
		t.Errorf("the pod's sysctls changed the host's")
	}
}
