//go:build linux

package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/config"
	"github.com/berth-project/berth/internal/docker"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/moby/moby/client"
)

const (
	pauseImage   = config.DefaultPauseImage
	busyboxImage = "berth.local/busybox:1.36"
	// runLabel marks every container the direct sequences make; berth's
	// pods are found by their pod namespace (one per run) instead.
	runLabel    = "io.berth.bench.run"
	networkName = "berthbench"
)

// cniPlugins are the plugins the bench's network runs: bridge with
// host-local, and loopback, which berth runs for every pod.
var cniPlugins = []string{"bridge", "host-local", "loopback"}

// env is one run's world: a Docker client, and a CNI network of its own
// (config dir, bridge, subnet, IPAM state) that nothing else uses.
type env struct {
	runID     string
	namespace string // the pod namespace of berth's pods
	docker    *client.Client
	binDirs   []string
	confDir   string
	ipamDir   string // host-local's dataDir
	bridge    string
	subnet    netip.Prefix
}

// requireEnv skips the benchmark unless BERTH_INTEGRATION=1; with it, a
// missing prerequisite fails the benchmark.
func requireEnv(tb testing.TB) {
	tb.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		tb.Skip("bench: needs root, a running dockerd, the berth.local images and the CNI plugins; " +
			"set BERTH_INTEGRATION=1 to run it (a missing prerequisite then fails)")
	}
	if os.Geteuid() != 0 {
		tb.Fatal("bench: needs root")
	}
	for _, tool := range []string{"ip", "iptables-save", "ip6tables-save", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("bench: needs %s: %v", tool, err)
		}
	}
}

// newEnv checks the prerequisites, writes the network config and
// registers the removal of everything the run may leave behind.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	requireEnv(tb)
	e := &env{runID: randomHex(tb, 4)}
	e.namespace = "berth-bench-" + e.runID

	dc, err := docker.New(os.Getenv("DOCKER_HOST"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dc.Close() })
	e.docker = dc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dc.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		tb.Fatalf("bench: dockerd does not answer: %v (run hack/setup.sh)", err)
	}
	for _, img := range []string{pauseImage, busyboxImage} {
		if _, err := dc.ImageInspect(ctx, img); err != nil {
			tb.Fatalf("bench: image %s: %v (run hack/images.sh)", img, err)
		}
	}
	e.binDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}
	if p := os.Getenv("CNI_PATH"); p != "" {
		e.binDirs = filepath.SplitList(p)
	}
	for _, p := range cniPlugins {
		if _, err := invoke.FindInPath(p, e.binDirs); err != nil {
			tb.Fatalf("bench: CNI plugin %s not in %v (set CNI_PATH): %v", p, e.binDirs, err)
		}
	}

	e.bridge = freeBridgeName(tb)
	e.subnet = freeSubnet(tb)
	e.confDir = filepath.Join(tb.TempDir(), "net.d")
	e.ipamDir = filepath.Join(tb.TempDir(), "ipam")
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		tb.Fatal(err)
	}

	// Cleanups run last-registered first: pods (removed through berth,
	// and CNI DEL of the direct ones, registered later) go first, then
	// any container left, the bridge, and last iptables and ip_forward.
	before := iptablesLines(tb)
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if now, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil && string(now) != string(forward) {
			if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644); err != nil {
				tb.Errorf("restore ip_forward: %v", err)
			}
		}
		restoreIptables(tb, before, []string{networkName, e.bridge, e.subnet.String()})
	})
	tb.Cleanup(func() {
		if out, err := run("ip", "link", "del", e.bridge); err != nil && !strings.Contains(out, "Cannot find device") {
			tb.Errorf("delete bridge %s: %v: %s", e.bridge, err, out)
		}
	})

	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.removeContainers(ctx); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})

	conf := fmt.Sprintf(`{
	"cniVersion": "1.0.0",
	"name": %q,
	"plugins": [{
		"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
		"ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
	}]
}`, networkName, e.bridge, e.ipamDir, e.subnet)
	if err := os.WriteFile(filepath.Join(e.confDir, "10-"+networkName+".conflist"), []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	return e
}

// removeContainers force-removes every container of the run: the direct
// sequences' (by label) and berth's (by pod namespace).
func (e *env) removeContainers(ctx context.Context) error {
	var errs []error
	for _, f := range []client.Filters{
		client.Filters{}.Add("label", runLabel+"="+e.runID),
		client.Filters{}.Add("label", "io.kubernetes.pod.namespace="+e.namespace),
	} {
		res, err := e.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range res.Items {
			if _, err := e.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// leftovers describes what the run still holds: containers, links on the
// bridge and host-local allocations. Empty means the end state is clean.
func (e *env) leftovers(ctx context.Context) ([]string, error) {
	var left []string
	for _, f := range []client.Filters{
		client.Filters{}.Add("label", runLabel+"="+e.runID),
		client.Filters{}.Add("label", "io.kubernetes.pod.namespace="+e.namespace),
	} {
		res, err := e.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return nil, err
		}
		for _, c := range res.Items {
			left = append(left, fmt.Sprintf("container %s %v (%s)", c.ID[:12], c.Names, c.State))
		}
	}
	// A namespace's veth goes with it, which the kernel finishes a little
	// after the last process of the pod exits.
	links := ""
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := run("ip", "-o", "link", "show", "master", e.bridge)
		if err != nil {
			return nil, fmt.Errorf("ip link show master %s: %v: %s", e.bridge, err, out)
		}
		if links = strings.TrimSpace(out); links == "" || time.Now().After(deadline) {
			break
		}
	}
	if links != "" {
		left = append(left, "links on "+e.bridge+":\n"+links)
	}
	entries, err := os.ReadDir(filepath.Join(e.ipamDir, networkName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, d := range entries {
		// host-local keeps "lock" and "last_reserved_ip.<range>"; every
		// other file is an allocated address.
		if _, err := netip.ParseAddr(d.Name()); err == nil {
			left = append(left, "host-local allocation "+d.Name())
		}
	}
	return left, nil
}

// freeBridgeName returns a bridge name no link has.
func freeBridgeName(tb testing.TB) string {
	tb.Helper()
	for range 10 {
		name := "berthb" + randomHex(tb, 3)
		if _, err := net.InterfaceByName(name); err != nil {
			return name
		}
	}
	tb.Fatal("bench: no free bridge name")
	return ""
}

// routeTypes are the words `ip route` may put before a route's prefix.
var routeTypes = []string{"unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast"}

// freeSubnet picks a /24 in 10.89.0.0/16 that no route of this machine
// (other than the default route) and no local address overlaps.
func freeSubnet(tb testing.TB) netip.Prefix {
	tb.Helper()
	var used []netip.Prefix
	out, err := run("ip", "-4", "route", "show", "table", "all")
	if err != nil {
		tb.Fatalf("ip route: %v: %s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && slices.Contains(routeTypes, fields[0]) {
			fields = fields[1:]
		}
		if len(fields) == 0 {
			continue
		}
		// "default" parses as neither and is skipped: every /24 is in it.
		if p, err := netip.ParsePrefix(fields[0]); err == nil && p.Bits() > 0 {
			used = append(used, p.Masked())
		} else if a, err := netip.ParseAddr(fields[0]); err == nil && a.Is4() {
			used = append(used, netip.PrefixFrom(a, 32))
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			used = append(used, p.Masked())
		}
	}
	start := int(randomByte(tb))
	for i := range 256 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 89, byte(start + i), 0}), 24)
		if !slices.ContainsFunc(used, p.Overlaps) {
			return p
		}
	}
	tb.Fatal("bench: no /24 in 10.89.0.0/16 is free of local routes")
	return netip.Prefix{}
}

// iptablesLines returns the rule and chain lines of iptables-save and
// ip6tables-save, each prefixed with the command and table.
func iptablesLines(tb testing.TB) []string {
	tb.Helper()
	var lines []string
	for _, cmd := range []string{"iptables", "ip6tables"} {
		out, err := run(cmd + "-save")
		if err != nil {
			tb.Fatalf("%s-save: %v: %s", cmd, err, out)
		}
		table := ""
		for _, l := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(l, "*"):
				table = l[1:]
			case strings.HasPrefix(l, ":"):
				f := strings.Fields(l)
				lines = append(lines, cmd+" "+table+" "+f[0])
			case strings.HasPrefix(l, "-A "):
				lines = append(lines, cmd+" "+table+" "+l)
			}
		}
	}
	return lines
}

// restoreIptables deletes the rules added since before that mention one
// of ours (network name, bridge, subnet), then the chains added since
// before that those rules jumped to. The bench's network config asks for
// no masquerading and no port mappings, so normally there is nothing.
func restoreIptables(tb testing.TB, before []string, ours []string) {
	tb.Helper()
	var chains []string
	for _, l := range iptablesLines(tb) {
		if slices.Contains(before, l) {
			continue
		}
		f := strings.SplitN(l, " ", 3)
		cmd, table, rule := f[0], f[1], f[2]
		if !strings.HasPrefix(rule, "-A ") || !slices.ContainsFunc(ours, func(s string) bool { return strings.Contains(rule, s) }) {
			continue
		}
		args := strings.Fields(rule)
		if strings.Contains(rule, `"`) {
			tb.Errorf("bench left %s rule %s (quoted; not removed)", cmd, rule)
			continue
		}
		args[0] = "-D"
		if out, err := run(cmd, append([]string{"-t", table}, args...)...); err != nil {
			tb.Errorf("%s -t %s %s: %v: %s", cmd, table, strings.Join(args, " "), err, out)
		}
		if i := slices.Index(args, "-j"); i >= 0 && i+1 < len(args) && strings.HasPrefix(args[i+1], "CNI-") &&
			!slices.Contains(before, cmd+" "+table+" :"+args[i+1]) {
			chains = append(chains, cmd+" "+table+" "+args[i+1])
		}
	}
	for _, c := range chains {
		f := strings.Fields(c)
		for _, op := range []string{"-F", "-X"} {
			if out, err := run(f[0], "-t", f[1], op, f[2]); err != nil {
				tb.Errorf("%s -t %s %s %s: %v: %s", f[0], f[1], op, f[2], err, out)
			}
		}
	}
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomByte(tb testing.TB) byte {
	b := []byte{0}
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b[0]
}
