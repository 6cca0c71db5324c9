package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeManager returns a Manager running fakeExec over confDir, its cache
// dir and the fake.
func fakeManager(t *testing.T, confDir string) (*Manager, string, *fakeExec) {
	t.Helper()
	bin := stubPlugins(t, "fakebr", "fakeportmap")
	cache := t.TempDir()
	fake := &fakeExec{}
	m, err := newManager(Options{ConfDir: confDir, BinDirs: []string{bin}, CacheDir: cache}, fake)
	if err != nil {
		t.Fatal(err)
	}
	return m, cache, fake
}

var testAttachment = Attachment{
	ID:           "sandbox1",
	NetNS:        "/run/netns/test",
	PodName:      "web",
	PodNamespace: "default",
	PodUID:       "uid-1",
	PortMappings: []PortMapping{
		{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"},
		{HostPort: 0, ContainerPort: 81},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
	},
	CgroupParent: "/kubepods/pod1",
}

const testArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sandbox1;K8S_POD_UID=uid-1"

var testPortMappings = []any{
	map[string]any{"hostPort": float64(8080), "containerPort": float64(80), "protocol": "tcp"},
	map[string]any{"hostPort": float64(5353), "containerPort": float64(53), "protocol": "udp", "hostIP": "127.0.0.1"},
}

// ignoreRuntimeConfig compares calls without their runtimeConfig.
var ignoreRuntimeConfig = cmpopts.IgnoreFields(pluginCall{}, "RuntimeConfig")

func TestSetup(t *testing.T) {
	confDir := t.TempDir()
	writeFile(t, confDir, "10-a.conflist", confListA)
	m, cache, fake := fakeManager(t, confDir)

	got, err := m.Setup(context.Background(), testAttachment)
	if err != nil {
		t.Fatalf("Setup() = %v", err)
	}
	want := Result{IPs: []string{"10.1.2.5", "2001:db8::5", "10.1.2.6"}, NetworkName: "net-a"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Setup() mismatch (-want +got):\n%s", diff)
	}

	// Only the pod network runs plugins: "lo" is brought up in-process.
	calls := fake.takeCalls()
	wantCalls := []pluginCall{
		{Command: "ADD", Plugin: "fakebr", ContainerID: "sandbox1", NetNS: "/run/netns/test", IfName: "eth0", Args: testArgs},
		{Command: "ADD", Plugin: "fakeportmap", ContainerID: "sandbox1", NetNS: "/run/netns/test", IfName: "eth0", Args: testArgs},
	}
	if diff := cmp.Diff(wantCalls, calls, ignoreRuntimeConfig); diff != "" {
		t.Fatalf("plugin calls mismatch (-want +got):\n%s", diff)
	}
	// Only the plugin with the capability gets the port mappings.
	if calls[0].RuntimeConfig != nil {
		t.Errorf("fakebr runtimeConfig = %v, want none", calls[0].RuntimeConfig)
	}
	if diff := cmp.Diff(map[string]any{"portMappings": testPortMappings}, calls[1].RuntimeConfig); diff != "" {
		t.Errorf("fakeportmap runtimeConfig mismatch (-want +got):\n%s", diff)
	}

	// The pod network, and only it, is in the cache DEL reads.
	entries, err := os.ReadDir(filepath.Join(cache, "results"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"net-a-sandbox1-eth0"}, names); diff != "" {
		t.Errorf("cache mismatch (-want +got):\n%s", diff)
	}
}

func TestSetupRollsBack(t *testing.T) {
	tests := []struct {
		name      string
		fail      string
		wantErr   string
		wantCalls []string
	}{
		{
			name:      "last plugin fails",
			fail:      "ADD fakeportmap",
			wantErr:   `set up network "net-a" for sandbox sandbox1`,
			wantCalls: []string{"ADD fakebr", "ADD fakeportmap", "DEL fakeportmap", "DEL fakebr"},
		},
		{
			name:      "rollback fails too",
			fail:      "ADD fakebr DEL fakebr",
			wantErr:   `roll back: tear down network "net-a" for sandbox sandbox1`,
			wantCalls: []string{"ADD fakebr", "DEL fakeportmap", "DEL fakebr"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir := t.TempDir()
			writeFile(t, confDir, "10-a.conflist", confListA)
			m, cache, fake := fakeManager(t, confDir)
			fake.fail = map[string]bool{}
			f := strings.Fields(tt.fail)
			for i := 0; i < len(f); i += 2 {
				fake.fail[f[i]+" "+f[i+1]] = true
			}

			_, err := m.Setup(context.Background(), testAttachment)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Setup() error = %v, want it to contain %q", err, tt.wantErr)
			}
			var calls []string
			for _, c := range fake.takeCalls() {
				calls = append(calls, c.Command+" "+c.Plugin)
			}
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("plugin calls mismatch (-want +got):\n%s", diff)
			}
			if entries, _ := os.ReadDir(filepath.Join(cache, "results")); len(entries) != 0 && !strings.Contains(tt.name, "rollback fails") {
				t.Errorf("cache holds %d entries after rollback, want none", len(entries))
			}
		})
	}
}

func TestSetupInvalid(t *testing.T) {
	confDir := t.TempDir()
	m, _, fake := fakeManager(t, confDir)
	ctx := context.Background()

	if _, err := m.Setup(ctx, testAttachment); err == nil || !strings.Contains(err.Error(), "no network config found") {
		t.Errorf("Setup() without config = %v, want no network config", err)
	}
	writeFile(t, confDir, "10-a.conflist", confListA)
	bad := testAttachment
	bad.PortMappings = []PortMapping{{HostPort: 1, ContainerPort: 1, Protocol: "icmp"}}
	if _, err := m.Setup(ctx, bad); err == nil || !strings.Contains(err.Error(), `unknown protocol "icmp"`) {
		t.Errorf("Setup() with protocol icmp = %v, want unknown protocol", err)
	}
	bad = testAttachment
	bad.NetNS = ""
	if _, err := m.Setup(ctx, bad); err == nil {
		t.Errorf("Setup() without netns = nil, want error")
	}
	if calls := fake.takeCalls(); len(calls) != 0 {
		t.Errorf("plugins ran for invalid Setup: %v", calls)
	}
}

func TestTeardownUsesCache(t *testing.T) {
	confDir := t.TempDir()
	writeFile(t, confDir, "10-a.conflist", confListA)
	m, cache, fake := fakeManager(t, confDir)
	ctx := context.Background()
	if _, err := m.Setup(ctx, testAttachment); err != nil {
		t.Fatalf("Setup() = %v", err)
	}
	fake.takeCalls()

	// The config changes, and the namespace is gone.
	if err := os.Remove(filepath.Join(confDir, "10-a.conflist")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, confDir, "10-b.conflist", confListB)
	gone := Attachment{ID: testAttachment.ID}
	if err := m.Teardown(ctx, gone); err != nil {
		t.Fatalf("Teardown() = %v", err)
	}
	calls := fake.takeCalls()
	wantCalls := []pluginCall{
		{Command: "DEL", Plugin: "fakeportmap", ContainerID: "sandbox1", IfName: "eth0", Args: testArgs},
		{Command: "DEL", Plugin: "fakebr", ContainerID: "sandbox1", IfName: "eth0", Args: testArgs},
	}
	if diff := cmp.Diff(wantCalls, calls, ignoreRuntimeConfig); diff != "" {
		t.Fatalf("plugin calls mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"portMappings": testPortMappings}, calls[0].RuntimeConfig); diff != "" {
		t.Errorf("DEL fakeportmap runtimeConfig mismatch (-want +got):\n%s", diff)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "results")); len(entries) != 0 {
		t.Errorf("cache holds %d entries after Teardown, want none", len(entries))
	}

	// Again: nothing cached, so DEL runs with the current config.
	if err := m.Teardown(ctx, gone); err != nil {
		t.Fatalf("second Teardown() = %v", err)
	}
	wantCalls = []pluginCall{
		{Command: "DEL", Plugin: "fakebr", ContainerID: "sandbox1", IfName: "eth0", Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=;K8S_POD_NAME=;K8S_POD_INFRA_CONTAINER_ID=sandbox1;K8S_POD_UID="},
	}
	if diff := cmp.Diff(wantCalls, fake.takeCalls(), ignoreRuntimeConfig); diff != "" {
		t.Fatalf("plugin calls mismatch (-want +got):\n%s", diff)
	}
}

func TestTeardownWithoutConfig(t *testing.T) {
	m, _, fake := fakeManager(t, t.TempDir())
	if err := m.Teardown(context.Background(), Attachment{ID: "never"}); err != nil {
		t.Fatalf("Teardown() = %v", err)
	}
	// No config and nothing cached: there is nothing to DEL ("lo" goes
	// with the namespace).
	if calls := fake.takeCalls(); len(calls) != 0 {
		t.Errorf("plugins ran for Teardown without config: %v", calls)
	}
}

func TestTeardownError(t *testing.T) {
	confDir := t.TempDir()
	writeFile(t, confDir, "10-a.conflist", confListA)
	m, _, fake := fakeManager(t, confDir)
	fake.fail = map[string]bool{"DEL fakebr": true}
	err := m.Teardown(context.Background(), testAttachment)
	if err == nil || !strings.Contains(err.Error(), `tear down network "net-a" for sandbox sandbox1`) {
		t.Fatalf("Teardown() = %v, want it to name the network and sandbox", err)
	}
	var calls []string
	for _, c := range fake.takeCalls() {
		calls = append(calls, c.Command+" "+c.Plugin)
	}
	if diff := cmp.Diff([]string{"DEL fakeportmap", "DEL fakebr"}, calls); diff != "" {
		t.Errorf("plugin calls mismatch (-want +got):\n%s", diff)
	}
}

func TestTeardownEveryCachedNetwork(t *testing.T) {
	// The sandbox was added to net-a, then to net-b after the config
	// changed: both are cached, and a failing DEL of one does not stop
	// the other.
	confDir := t.TempDir()
	writeFile(t, confDir, "10-a.conflist", confListA)
	m, cache, fake := fakeManager(t, confDir)
	ctx := context.Background()
	if _, err := m.Setup(ctx, testAttachment); err != nil {
		t.Fatalf("Setup() net-a = %v", err)
	}
	writeFile(t, confDir, "05-b.conflist", confListB)
	if _, err := m.Setup(ctx, testAttachment); err != nil {
		t.Fatalf("Setup() net-b = %v", err)
	}
	fake.takeCalls()

	fake.fail = map[string]bool{"DEL fakeportmap": true}
	err := m.Teardown(ctx, testAttachment)
	if err == nil || !strings.Contains(err.Error(), `tear down network "net-a" for sandbox sandbox1`) {
		t.Fatalf("Teardown() = %v, want it to name net-a", err)
	}
	if strings.Contains(err.Error(), "net-b") {
		t.Errorf("Teardown() = %v, want no error for net-b", err)
	}
	var calls []string
	for _, c := range fake.takeCalls() {
		calls = append(calls, c.Command+" "+c.Plugin)
	}
	if diff := cmp.Diff([]string{"DEL fakeportmap", "DEL fakebr"}, calls); diff != "" {
		t.Errorf("plugin calls mismatch (-want +got):\n%s", diff)
	}
	// net-a stays cached for a retry; net-b is gone.
	entries, err := os.ReadDir(filepath.Join(cache, "results"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"net-a-sandbox1-eth0"}, names); diff != "" {
		t.Errorf("cache mismatch (-want +got):\n%s", diff)
	}
}

func TestSetupLoopbackUp(t *testing.T) {
	confDir := t.TempDir()
	writeFile(t, confDir, "10-a.conflist", confListA)
	m, cache, fake := fakeManager(t, confDir)
	ctx := context.Background()

	// "lo" is brought up in the sandbox's namespace before any plugin runs.
	var order []string
	m.loopbackUp = func(path string) error {
		order = append(order, "lo up "+path)
		if calls := fake.takeCalls(); len(calls) != 0 {
			t.Errorf("plugins ran before lo was up: %v", calls)
		}
		return nil
	}
	if _, err := m.Setup(ctx, testAttachment); err != nil {
		t.Fatalf("Setup() = %v", err)
	}
	for _, c := range fake.takeCalls() {
		order = append(order, c.Command+" "+c.Plugin)
	}
	if diff := cmp.Diff([]string{"lo up /run/netns/test", "ADD fakebr", "ADD fakeportmap"}, order); diff != "" {
		t.Errorf("Setup order mismatch (-want +got):\n%s", diff)
	}
	// Teardown has nothing to do for "lo".
	order = nil
	if err := m.Teardown(ctx, testAttachment); err != nil {
		t.Fatalf("Teardown() = %v", err)
	}
	for _, c := range fake.takeCalls() {
		order = append(order, c.Command+" "+c.Plugin)
	}
	if diff := cmp.Diff([]string{"DEL fakeportmap", "DEL fakebr"}, order); diff != "" {
		t.Errorf("Teardown calls mismatch (-want +got):\n%s", diff)
	}

	// If "lo" cannot be brought up, Setup fails before running (or rolling
	// back) any plugin.
	m.loopbackUp = func(string) error { return errors.New("lo is broken") }
	_, err := m.Setup(ctx, testAttachment)
	if err == nil || !strings.Contains(err.Error(), "set up network for sandbox sandbox1") || !strings.Contains(err.Error(), "lo is broken") {
		t.Fatalf("Setup() = %v, want the loopback error for sandbox1", err)
	}
	if calls := fake.takeCalls(); len(calls) != 0 {
		t.Errorf("plugins ran after lo failed: %v", calls)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "results")); len(entries) != 0 {
		t.Errorf("cache holds %d entries after a failed Setup, want none", len(entries))
	}
}

func TestPodIPs(t *testing.T) {
	tests := []struct {
		name    string
		result  string
		want    []string
		wantErr bool
	}{
		{
			name:   "IPv4 moved first, host side dropped",
			result: fmt.Sprintf(fakeResult, "eth0", "/run/netns/x"),
			want:   []string{"10.1.2.5", "2001:db8::5", "10.1.2.6"},
		},
		{
			name:   "IPv6 only",
			result: `{"cniVersion": "1.0.0", "ips": [{"address": "2001:db8::7/64"}, {"address": "2001:db8::8/64"}]}`,
			want:   []string{"2001:db8::7", "2001:db8::8"},
		},
		{
			name:   "0.4.0 result without interfaces",
			result: `{"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.2.9/24"}]}`,
			want:   []string{"10.1.2.9"},
		},
		{
			name:   "0.3.1 result",
			result: `{"cniVersion": "0.3.1", "interfaces": [{"name": "eth0", "sandbox": "/x"}], "ips": [{"version": "6", "address": "2001:db8::9/64", "interface": 0}, {"version": "4", "address": "10.1.2.10/24", "interface": 0}]}`,
			want:   []string{"10.1.2.10", "2001:db8::9"},
		},
		{
			name:    "other interface only",
			result:  `{"cniVersion": "1.0.0", "interfaces": [{"name": "net1", "sandbox": "/x"}], "ips": [{"address": "10.1.2.5/24", "interface": 0}]}`,
			wantErr: true,
		},
		{
			name:    "no IPs",
			result:  `{"cniVersion": "1.0.0"}`,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := create.CreateFromBytes([]byte(tt.result))
			if err != nil {
				t.Fatal(err)
			}
			got, err := podIPs(res, "eth0")
			if (err != nil) != tt.wantErr {
				t.Fatalf("podIPs() error = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("podIPs() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
