package integration

// A CNI network of a test's own for the TestRobust* tests, and the script
// plugins they chain into it.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cniNetOptions shape a cniNet.
type cniNetOptions struct {
	// Plugins are plugin configs (JSON objects) chained after bridge.
	Plugins []string
	// PluginsBefore are plugin configs chained before bridge (run after
	// it on DEL).
	PluginsBefore []string
	// RangeStart and RangeEnd, when set, limit host-local to hosts
	// .RangeStart-.RangeEnd of the subnet.
	RangeStart, RangeEnd int
}

// cniNet is a bridge network with host-local IPAM, all of its own: conf
// dir, plugin dir for script plugins, IPAM data dir, bridge and a /24.
type cniNet struct {
	t       *testing.T
	name    string
	confDir string
	binDir  string
	dataDir string
	bridge  string
	subnet  string
}

var (
	netMu      sync.Mutex
	netSubnets = map[string]bool{}
	netSeq     int
)

func newCNINet(t *testing.T, opts cniNetOptions) *cniNet {
	t.Helper()
	requireIntegration(t)
	dir := shortTempDir(t)
	n := &cniNet{t: t, confDir: filepath.Join(dir, "net.d"), binDir: filepath.Join(dir, "bin"), dataDir: filepath.Join(dir, "ipam")}
	netMu.Lock()
	netSeq++
	seq := netSeq
	netMu.Unlock()
	n.name = fmt.Sprintf("berth-robust-%d", seq)
	n.bridge = freeBridgeName(t)
	n.subnet = pickSubnet(t)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", n.bridge).Run()
		netMu.Lock()
		delete(netSubnets, n.subnet)
		netMu.Unlock()
	})
	for _, d := range []string{n.confDir, n.binDir, n.dataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rng := fmt.Sprintf(`{"subnet":%q}`, n.subnet)
	if opts.RangeStart != 0 {
		rng = fmt.Sprintf(`{"subnet":%q,"rangeStart":%q,"rangeEnd":%q}`, n.subnet, n.host(opts.RangeStart), n.host(opts.RangeEnd))
	}
	plugins := append([]string(nil), opts.PluginsBefore...)
	plugins = append(plugins, fmt.Sprintf(`{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[%s]],"routes":[{"dst":"0.0.0.0/0"}]}}`, n.bridge, n.dataDir, rng))
	plugins = append(plugins, opts.Plugins...)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[%s]}`, n.name, strings.Join(plugins, ",\n"))
	if err := os.WriteFile(filepath.Join(n.confDir, "10-"+n.name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// host is address .i of the network's /24.
func (n *cniNet) host(i int) string {
	return strings.TrimSuffix(n.subnet, "0/24") + fmt.Sprint(i)
}

// binDirs is the --cni-bin-dir value: the script plugins, then Debian's.
func (n *cniNet) binDirs() string {
	return n.binDir + ":/usr/lib/cni"
}

// addPlugin installs an executable script plugin.
func (n *cniNet) addPlugin(name, script string) {
	n.t.Helper()
	if err := os.WriteFile(filepath.Join(n.binDir, name), []byte(script), 0o755); err != nil {
		n.t.Fatal(err)
	}
}

// allocatedIPs lists host-local's allocations in this network.
func (n *cniNet) allocatedIPs() []string {
	entries, _ := os.ReadDir(filepath.Join(n.dataDir, n.name))
	var ips []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			ips = append(ips, en.Name())
		}
	}
	slices.Sort(ips)
	return ips
}

// ports lists the interfaces (pod veths) attached to the bridge.
func (n *cniNet) ports() []string {
	n.t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", n.bridge).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "does not exist") {
			return nil
		}
		n.t.Fatalf("ip link show master %s: %v\n%s", n.bridge, err, out)
	}
	var ports []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			ports = append(ports, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return ports
}

// freeBridgeName is an interface name no link has yet.
func freeBridgeName(t *testing.T) string {
	t.Helper()
	for i := 0; i < 100; i++ {
		netMu.Lock()
		netSeq++
		name := fmt.Sprintf("berthrb%d", netSeq)
		netMu.Unlock()
		if exec.Command("ip", "link", "show", name).Run() != nil {
			return name
		}
	}
	t.Fatal("no free bridge name")
	return ""
}

// pickSubnet is a /24 no route, the suite network or another cniNet of
// this run uses. It counts down from 10.89.249.0/24 while the suite counts
// up from 10.89.150.0/24.
func pickSubnet(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	netMu.Lock()
	defer netMu.Unlock()
	for i := 249; i > 150; i-- {
		cand := fmt.Sprintf("10.89.%d.0/24", i)
		if cand == theSuite.subnet || netSubnets[cand] || strings.Contains(string(out), fmt.Sprintf("10.89.%d.", i)) {
			continue
		}
		netSubnets[cand] = true
		return cand
	}
	t.Fatal("no free /24 in 10.89.151-249.0/24")
	return ""
}

// slowPlugin is a chained CNI plugin that, on ADD, records its pid in
// markDir/add-<container id>, sleeps, then passes the previous result on;
// DEL succeeds.
func slowPlugin(markDir string, sleep time.Duration) string {
	return fmt.Sprintf(`#!/bin/sh
conf=$(cat)
case "$CNI_COMMAND" in
ADD)
	echo $$ > %[1]q/add-"$CNI_CONTAINERID"
	sleep %[2]d
	printf '%%s' "$conf" | jq -c '.prevResult + {cniVersion: .cniVersion}'
	;;
DEL)
	touch %[1]q/del-"$CNI_CONTAINERID"
	;;
VERSION)
	echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}'
	;;
esac
`, markDir, int(sleep.Seconds()))
}

// slowDelPlugin is a CNI plugin that passes ADD through (first in a
// chain or not) and, on the first DEL of a sandbox, records its pid in
// markDir/del-<container id> and sleeps.
func slowDelPlugin(markDir string, sleep time.Duration) string {
	return fmt.Sprintf(`#!/bin/sh
conf=$(cat)
case "$CNI_COMMAND" in
ADD)
	printf '%%s' "$conf" | jq -c 'if .prevResult then .prevResult + {cniVersion: .cniVersion} else {cniVersion: .cniVersion} end'
	;;
DEL)
	# Only the first DEL of a sandbox is slow.
	if [ ! -e %[1]q/del-"$CNI_CONTAINERID" ]; then
		echo $$ > %[1]q/del-"$CNI_CONTAINERID"
		sleep %[2]d
	fi
	;;
VERSION)
	echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}'
	;;
esac
`, markDir, int(sleep.Seconds()))
}

// failPlugin is a chained CNI plugin whose ADD fails; DEL succeeds.
const failPlugin = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD)
	sleep 0.3
	echo '{"cniVersion":"1.0.0","code":999,"msg":"robust test: this plugin fails ADD on purpose"}'
	exit 1
	;;
VERSION)
	echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}'
	;;
esac
`
