//go:build linux

package network

// Integration tests against the real CNI plugins (bridge, host-local,
// portmap) in real network namespaces. They need root, ip and iptables;
// without them they skip, unless BERTH_INTEGRATION=1 makes a missing
// prerequisite a failure. CNI_PATH (colon-separated) overrides where the
// plugins are looked for. The Manager only sees those three plugins: "lo"
// is brought up in-process, without the loopback plugin.
//
// Each test makes its own bridge, namespaces, config, cache and host-local
// data dir, and removes them and the iptables chains portmap created.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/vishvananda/netns"
)

const integrationNetwork = "berthtest"

var integrationPlugins = []string{"bridge", "host-local", "portmap"}

// integrationMissing skips the test, or fails it under
// BERTH_INTEGRATION=1, for a missing prerequisite.
func integrationMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := "integration test: " + fmt.Sprintf(format, args...)
	if os.Getenv("BERTH_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (skipped; BERTH_INTEGRATION=1 makes this a failure)")
}

// requireRoot skips the test, or fails it under BERTH_INTEGRATION=1,
// unless it runs as root and finds tools.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		integrationMissing(t, "needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			integrationMissing(t, "needs %s: %v", tool, err)
		}
	}
}

// requireIntegration skips the test, or fails it under
// BERTH_INTEGRATION=1, unless the machine can run it. It returns the
// plugin directories: a directory of its own holding only
// integrationPlugins, so that nothing else (loopback) can be run.
func requireIntegration(t *testing.T) []string {
	t.Helper()
	requireRoot(t, "ip", "iptables-save", "iptables", "ip6tables-save")
	dirs := []string{"/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni"}
	if p := os.Getenv("CNI_PATH"); p != "" {
		dirs = filepath.SplitList(p)
	}
	bin := t.TempDir()
	for _, p := range integrationPlugins {
		path, err := invoke.FindInPath(p, dirs)
		if err != nil {
			integrationMissing(t, "needs the %s CNI plugin (set CNI_PATH): %v", p, err)
		}
		if err := os.Symlink(path, filepath.Join(bin, p)); err != nil {
			t.Fatal(err)
		}
	}
	return []string{bin}
}

// fixture is one test's network: a bridge on a private /24.
type fixture struct {
	m       *Manager
	confDir string
	bridge  string
	subnet  netip.Prefix
	dataDir string // host-local's; allocations are dataDir/<network>/<ip>
}

// newFixture writes a conflist for a fresh bridge and subnet and
// registers the cleanup of everything the test may leave: the bridge,
// iptables chains and ip_forward. rangeStart and rangeEnd may limit the
// addresses host-local hands out (host parts, 0 for no limit).
func newFixture(t *testing.T, rangeStart, rangeEnd int) *fixture {
	t.Helper()
	binDirs := requireIntegration(t)
	f := &fixture{
		confDir: t.TempDir(),
		bridge:  fmt.Sprintf("berthtest%d", os.Getpid()%1000000),
		subnet:  freeSubnet(t),
		dataDir: t.TempDir(),
	}
	rules := iptablesRules(t)
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644); err != nil {
			t.Errorf("restore ip_forward: %v", err)
		}
		restoreIptables(t, rules, integrationNetwork, f.bridge, f.subnet.String())
	})
	t.Cleanup(func() {
		if out, err := run("ip", "link", "del", f.bridge); err != nil && !strings.Contains(out, "Cannot find device") {
			t.Errorf("delete bridge %s: %v: %s", f.bridge, err, out)
		}
	})

	rng := fmt.Sprintf(`{"subnet": %q}`, f.subnet)
	if rangeStart > 0 {
		rng = fmt.Sprintf(`{"subnet": %q, "rangeStart": %q, "rangeEnd": %q}`, f.subnet, f.host(rangeStart), f.host(rangeEnd))
	}
	writeFile(t, f.confDir, "10-berthtest.conflist", fmt.Sprintf(`{
	"cniVersion": "1.0.0",
	"name": %q,
	"plugins": [
		{
			"type": "bridge",
			"bridge": %q,
			"isGateway": true,
			"ipMasq": false,
			"ipam": {"type": "host-local", "dataDir": %q, "ranges": [[%s]], "routes": [{"dst": "0.0.0.0/0"}]}
		},
		{"type": "portmap", "capabilities": {"portMappings": true}}
	]
}`, integrationNetwork, f.bridge, f.dataDir, rng))

	f.m, err = New(Options{ConfDir: f.confDir, BinDirs: binDirs, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// host returns the address with host part n in the fixture's subnet.
func (f *fixture) host(n int) netip.Addr {
	a := f.subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// allocated reports whether host-local holds ip for the network.
func (f *fixture) allocated(t *testing.T, ip string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(f.dataDir, integrationNetwork, ip))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// setup runs Setup for a and registers a Teardown for the end of the test
// in case the test stops half-way.
func (f *fixture) setup(t *testing.T, a Attachment) (Result, error) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := f.m.Teardown(ctx, Attachment{ID: a.ID}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f.m.Setup(ctx, a)
}

// freeSubnet picks a /24 in 10.88.200.0-10.88.249.0 that no address of
// this machine is in and no route of /24 or longer overlaps. A broader
// route (another runtime's 10.88.0.0/16) is tolerated: the test's /24
// route is more specific, and such runtimes allocate from the bottom.
func freeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	var used []netip.Prefix
	out, err := run("ip", "-4", "route", "show", "table", "all")
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(line) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Bits() >= 24 {
				used = append(used, p)
			} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
				used = append(used, netip.PrefixFrom(a, 32))
			}
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			used = append(used, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
		}
	}
	start := os.Getpid() % 50
	for i := range 50 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 88, byte(200 + (start+i)%50), 0}), 24)
		if !slices.ContainsFunc(used, p.Overlaps) {
			return p
		}
	}
	t.Fatal("no free /24 in 10.88.200.0-10.88.249.0")
	return netip.Prefix{}
}

// newNetns makes a named network namespace, removed at the end of the
// test, and returns its name and path.
func newNetns(t *testing.T) (name, path string) {
	t.Helper()
	name = "berthtest-" + randomID(t)[:8]
	if out, err := run("ip", "netns", "add", name); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := run("ip", "netns", "del", name); err != nil && !strings.Contains(out, "No such file") {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name, "/run/netns/" + name
}

func randomID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func TestIntegrationSetupTeardown(t *testing.T) {
	f := newFixture(t, 0, 0)
	nsName, nsPath := newNetns(t)
	hostPort := freePort(t)
	a := Attachment{
		ID:           "berthtest-" + randomID(t),
		NetNS:        nsPath,
		PodName:      "web",
		PodNamespace: "default",
		PodUID:       "uid-1",
		PortMappings: []PortMapping{{HostPort: int32(hostPort), ContainerPort: 8080, Protocol: "TCP", HostIP: "127.0.0.1"}},
	}

	res, err := f.setup(t, a)
	if err != nil {
		t.Fatalf("Setup() = %v", err)
	}
	if res.NetworkName != integrationNetwork || len(res.IPs) != 1 {
		t.Fatalf("Setup() = %+v, want one IP on %s", res, integrationNetwork)
	}
	ip := res.IPs[0]
	if addr, err := netip.ParseAddr(ip); err != nil || !f.subnet.Contains(addr) {
		t.Fatalf("pod IP %s is not in %s", ip, f.subnet)
	}
	if out, err := run("ip", "-n", nsName, "-o", "-4", "addr", "show", "dev", "eth0"); err != nil || !strings.Contains(out, "inet "+ip+"/24") {
		t.Errorf("eth0 in the namespace: %v: %s; want %s/24", err, out, ip)
	}
	if out, err := run("ip", "-n", nsName, "-o", "link", "show", "lo"); err != nil || !strings.Contains(out, ",UP") {
		t.Errorf("lo in the namespace is not up: %v: %s", err, out)
	}
	if out, err := run("ip", "-n", nsName, "-o", "-4", "addr", "show", "dev", "lo"); err != nil || !strings.Contains(out, "inet 127.0.0.1/8") {
		t.Errorf("lo in the namespace has no 127.0.0.1/8: %v: %s", err, out)
	}
	if !f.allocated(t, ip) {
		t.Errorf("host-local has no allocation for %s", ip)
	}
	if !strings.Contains(natRules(t), a.ID) {
		t.Errorf("no portmap rule for sandbox %s", a.ID)
	}

	// The pod is reachable through the bridge and the host port, and
	// reaches itself through "lo".
	ln := listenInNetns(t, nsPath, ":8080")
	checkConnect(t, "", ln, net.JoinHostPort(ip, "8080"))
	checkConnect(t, "", ln, net.JoinHostPort("127.0.0.1", fmt.Sprint(hostPort)))
	checkConnect(t, nsPath, ln, "127.0.0.1:8080")

	if err := f.m.Teardown(context.Background(), a); err != nil {
		t.Fatalf("Teardown() = %v", err)
	}
	if f.allocated(t, ip) {
		t.Errorf("host-local still holds %s after Teardown", ip)
	}
	if out, err := run("ip", "-n", nsName, "link", "show", "eth0"); err == nil {
		t.Errorf("eth0 is still in the namespace: %s", out)
	}
	if out, _ := run("ip", "-o", "link", "show", "master", f.bridge); strings.TrimSpace(out) != "" {
		t.Errorf("links still on %s: %s", f.bridge, out)
	}
	if rules := natRules(t); strings.Contains(rules, a.ID) {
		t.Errorf("portmap rules for sandbox %s remain:\n%s", a.ID, rules)
	}
}

func TestIntegrationTeardownWithoutNetns(t *testing.T) {
	f := newFixture(t, 0, 0)
	nsName, nsPath := newNetns(t)
	a := Attachment{
		ID:           "berthtest-" + randomID(t),
		NetNS:        nsPath,
		PodName:      "web",
		PodNamespace: "default",
		PodUID:       "uid-2",
		PortMappings: []PortMapping{{HostPort: int32(freePort(t)), ContainerPort: 80, HostIP: "127.0.0.1"}},
	}
	res, err := f.setup(t, a)
	if err != nil {
		t.Fatalf("Setup() = %v", err)
	}
	ip := res.IPs[0]

	// The pause process died: its namespace, and eth0 with it, is gone.
	if out, err := run("ip", "netns", "del", nsName); err != nil {
		t.Fatalf("ip netns del: %v: %s", err, out)
	}
	gone := Attachment{ID: a.ID}
	if err := f.m.Teardown(context.Background(), gone); err != nil {
		t.Fatalf("Teardown() without netns = %v", err)
	}
	if f.allocated(t, ip) {
		t.Errorf("host-local still holds %s after Teardown", ip)
	}
	if rules := natRules(t); strings.Contains(rules, a.ID) {
		t.Errorf("portmap rules for sandbox %s remain:\n%s", a.ID, rules)
	}
	if err := f.m.Teardown(context.Background(), gone); err != nil {
		t.Errorf("second Teardown() = %v", err)
	}
	// DEL of a sandbox never set up succeeds too.
	if err := f.m.Teardown(context.Background(), Attachment{ID: "berthtest-" + randomID(t)}); err != nil {
		t.Errorf("Teardown() of an unknown sandbox = %v", err)
	}
}

func TestIntegrationSetupRollsBack(t *testing.T) {
	// One address: the second pod's IPAM fails after bridge made its veth.
	f := newFixture(t, 10, 10)
	_, nsPath1 := newNetns(t)
	nsName2, nsPath2 := newNetns(t)
	first := Attachment{ID: "berthtest-" + randomID(t), NetNS: nsPath1}
	if _, err := f.setup(t, first); err != nil {
		t.Fatalf("Setup() = %v", err)
	}

	second := Attachment{
		ID:           "berthtest-" + randomID(t),
		NetNS:        nsPath2,
		PortMappings: []PortMapping{{HostPort: int32(freePort(t)), ContainerPort: 80, HostIP: "127.0.0.1"}},
	}
	_, err := f.setup(t, second)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("set up network %q for sandbox %s", integrationNetwork, second.ID)) {
		t.Fatalf("Setup() with no address left = %v, want an error naming the network and sandbox", err)
	}
	t.Logf("Setup() = %v", err)
	if out, err := run("ip", "-n", nsName2, "link", "show", "eth0"); err == nil {
		t.Errorf("eth0 left in the namespace: %s", out)
	}
	entries, err := os.ReadDir(filepath.Join(f.dataDir, integrationNetwork))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == f.host(10).String() {
			continue
		}
		if data, _ := os.ReadFile(filepath.Join(f.dataDir, integrationNetwork, e.Name())); strings.Contains(string(data), second.ID) {
			t.Errorf("allocation %s left for sandbox %s", e.Name(), second.ID)
		}
	}
	if rules := natRules(t); strings.Contains(rules, second.ID) {
		t.Errorf("portmap rules for sandbox %s remain:\n%s", second.ID, rules)
	}
	if out, _ := run("ip", "-o", "link", "show", "master", f.bridge); strings.Count(out, "\n") != 1 {
		t.Errorf("want only the first pod's veth on %s, have:\n%s", f.bridge, out)
	}

	if err := f.m.Teardown(context.Background(), first); err != nil {
		t.Fatalf("Teardown() = %v", err)
	}
	if f.allocated(t, f.host(10).String()) {
		t.Errorf("host-local still holds %s after Teardown", f.host(10))
	}
}

func TestIntegrationStatus(t *testing.T) {
	binDirs := requireIntegration(t)
	confDir := t.TempDir()
	m, err := New(Options{ConfDir: confDir, BinDirs: binDirs, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Status(); err == nil || !strings.Contains(err.Error(), "no network config found in "+confDir) {
		t.Errorf("Status() with an empty dir = %v, want no network config found", err)
	}
	writeFile(t, confDir, "10-berthtest.conflist", `{"cniVersion": "1.0.0", "name": "berthtest", "plugins": [{"type": "bridge", "bridge": "berthtest0", "ipam": {"type": "host-local", "subnet": "10.88.250.0/24"}}, {"type": "portmap", "capabilities": {"portMappings": true}}]}`)
	if err := m.Status(); err != nil {
		t.Errorf("Status() with a conflist = %v, want nil", err)
	}
}

func TestIntegrationSetLoopbackUp(t *testing.T) {
	requireRoot(t, "ip")
	nsName, nsPath := newNetns(t)
	if out, err := run("ip", "-n", nsName, "-o", "link", "show", "lo"); err != nil || strings.Contains(out, ",UP") {
		t.Fatalf("lo in a fresh namespace: %v: %s; want it down", err, out)
	}

	// Stay on one thread, so that the namespace seen after the call is the
	// one of the thread setLoopbackUp switched. A thread left elsewhere
	// stays locked and dies with the test's goroutine.
	runtime.LockOSThread()
	strayed := false
	defer func() {
		if !strayed {
			runtime.UnlockOSThread()
		}
	}()
	host, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	checkHost := func(call string) {
		t.Helper()
		cur, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		if !cur.Equal(host) {
			strayed = true
			t.Fatalf("after %s the thread is in %s, want the host's %s", call, cur, host)
		}
	}

	if err := setLoopbackUp(nsPath); err != nil {
		t.Fatalf("setLoopbackUp(%s) = %v", nsPath, err)
	}
	checkHost("setLoopbackUp")
	if out, err := run("ip", "-n", nsName, "-o", "link", "show", "lo"); err != nil || !strings.Contains(out, ",UP") {
		t.Errorf("lo is not up after setLoopbackUp: %v: %s", err, out)
	}
	if out, err := run("ip", "-n", nsName, "-o", "-4", "addr", "show", "dev", "lo"); err != nil || !strings.Contains(out, "inet 127.0.0.1/8") {
		t.Errorf("lo has no 127.0.0.1/8 after setLoopbackUp: %v: %s", err, out)
	}
	// The host's own "lo" is not what was touched: it was up already, and
	// stays so.
	if out, err := run("ip", "-o", "link", "show", "lo"); err != nil || !strings.Contains(out, ",UP") {
		t.Errorf("host lo: %v: %s", err, out)
	}

	// Again is fine.
	if err := setLoopbackUp(nsPath); err != nil {
		t.Errorf("second setLoopbackUp(%s) = %v", nsPath, err)
	}
	checkHost("a second setLoopbackUp")

	// Failures leave the thread in the host namespace too.
	dir := t.TempDir()
	writeFile(t, dir, "not-a-netns", "")
	notNetns := filepath.Join(dir, "not-a-netns")
	for _, path := range []string{"/run/netns/berthtest-absent-" + randomID(t)[:8], notNetns} {
		if err := setLoopbackUp(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("setLoopbackUp(%s) = %v, want an error naming the path", path, err)
		}
		checkHost("setLoopbackUp(" + path + ")")
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// inNetns runs fn on a goroutine of its own whose thread is in the
// network namespace at path. The thread switches namespace and back; if
// it cannot switch back it stays locked and dies with the goroutine.
func inNetns(path string, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("return to the original netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}

// listenInNetns listens on addr inside the network namespace at path.
func listenInNetns(t *testing.T, path, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var lnErr error
	err := inNetns(path, func() { ln, lnErr = net.Listen("tcp4", addr) })
	if err == nil {
		err = lnErr
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("listen in %s: %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// checkConnect dials addr from the network namespace at from ("": the
// host's) and checks that ln accepts the connection.
func checkConnect(t *testing.T, from string, ln net.Listener, addr string) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	var c net.Conn
	var err error
	dial := func() { c, err = net.DialTimeout("tcp4", addr, 5*time.Second) }
	if from == "" {
		dial()
	} else if nsErr := inNetns(from, dial); nsErr != nil {
		if c != nil {
			c.Close()
		}
		c, err = nil, fmt.Errorf("in %s: %w", from, nsErr)
	}
	if err != nil {
		t.Errorf("connect to the pod at %s: %v", addr, err)
		ln.(*net.TCPListener).SetDeadline(time.Now())
		<-accepted
		ln.(*net.TCPListener).SetDeadline(time.Time{})
		return
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Errorf("accept in the pod: %v", err)
	}
}

// natRules returns `iptables -t nat -S`.
func natRules(t *testing.T) string {
	t.Helper()
	out, err := run("iptables", "-t", "nat", "-S")
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v: %s", err, out)
	}
	return out
}
