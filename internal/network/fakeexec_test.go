package network

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// pluginCall is one plugin run seen by fakeExec.
type pluginCall struct {
	Command     string // ADD, DEL
	Plugin      string // plugin type
	ContainerID string
	NetNS       string
	IfName      string
	Args        string // CNI_ARGS
	// RuntimeConfig is the "runtimeConfig" of the plugin's config.
	RuntimeConfig map[string]any
}

// fakeExec stands in for plugin binaries. The first plugin of a list
// returns fakeResult on ADD, with the pod side of the result on the
// interface named by CNI_IFNAME; later plugins pass the previous result on.
type fakeExec struct {
	mu    sync.Mutex
	calls []pluginCall
	// fail makes "COMMAND plugin" fail, e.g. "ADD fakeportmap".
	fail map[string]bool
}

const fakeResult = `{
	"cniVersion": "1.0.0",
	"interfaces": [{"name": "veth1"}, {"name": %[1]q, "sandbox": %[2]q}],
	"ips": [
		{"address": "2001:db8::5/64", "interface": 1},
		{"address": "10.1.2.5/24", "interface": 1},
		{"address": "10.9.9.9/24", "interface": 0},
		{"address": "10.1.2.6/24", "interface": 1}
	]
}`

func (f *fakeExec) ExecPlugin(_ context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var conf struct {
		CNIVersion    string          `json:"cniVersion"`
		RuntimeConfig map[string]any  `json:"runtimeConfig"`
		PrevResult    json.RawMessage `json:"prevResult"`
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, err
	}
	c := pluginCall{
		Command:       env["CNI_COMMAND"],
		Plugin:        filepath.Base(pluginPath),
		ContainerID:   env["CNI_CONTAINERID"],
		NetNS:         env["CNI_NETNS"],
		IfName:        env["CNI_IFNAME"],
		Args:          env["CNI_ARGS"],
		RuntimeConfig: conf.RuntimeConfig,
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	fail := f.fail[c.Command+" "+c.Plugin]
	f.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("%s %s failed", c.Command, c.Plugin)
	}
	if c.Command != "ADD" {
		return nil, nil
	}
	if conf.PrevResult != nil {
		return conf.PrevResult, nil
	}
	return fmt.Appendf(nil, fakeResult, c.IfName, c.NetNS), nil
}

func (f *fakeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (f *fakeExec) Decode(jsonBytes []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(jsonBytes)
}

// takeCalls returns the calls so far and forgets them.
func (f *fakeExec) takeCalls() []pluginCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := f.calls
	f.calls = nil
	return calls
}

// stubPlugins makes a binary directory holding empty executables named
// plugins.
func stubPlugins(t *testing.T, plugins ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugins {
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeFile writes content to dir/name.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
