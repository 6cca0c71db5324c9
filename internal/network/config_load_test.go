package network

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	confListA  = `{"cniVersion": "1.0.0", "name": "net-a", "plugins": [{"type": "fakebr"}, {"type": "fakeportmap", "capabilities": {"portMappings": true}}]}`
	confListB  = `{"cniVersion": "1.0.0", "name": "net-b", "plugins": [{"type": "fakebr"}]}`
	confSingle = `{"cniVersion": "1.0.0", "name": "net-single", "type": "fakebr", "bridge": "x0"}`
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string
		wantFile    string
		wantName    string
		wantPlugins []string
		wantErr     string
	}{
		{
			name:    "empty dir",
			wantErr: "no network config found in ",
		},
		{
			name:    "only other extensions",
			files:   map[string]string{"10-a.conflist.bak": confListA, "README": "x", "sub/00.conflist": confListA},
			wantErr: "no network config found in ",
		},
		{
			name:        "lexical order across extensions",
			files:       map[string]string{"20-a.conflist": confListA, "10-single.conf": confSingle, "30-b.json": confListB},
			wantFile:    "10-single.conf",
			wantName:    "net-single",
			wantPlugins: []string{"fakebr"},
		},
		{
			name:        "conflist first",
			files:       map[string]string{"10-a.conflist": confListA, "20-single.conf": confSingle},
			wantFile:    "10-a.conflist",
			wantName:    "net-a",
			wantPlugins: []string{"fakebr", "fakeportmap"},
		},
		{
			name:        "json is a single plugin",
			files:       map[string]string{"10-single.json": confSingle},
			wantFile:    "10-single.json",
			wantName:    "net-single",
			wantPlugins: []string{"fakebr"},
		},
		{
			name:    "invalid first file is not skipped",
			files:   map[string]string{"10-broken.conflist": `{"name": "x", "plugins": [`, "20-a.conflist": confListA},
			wantErr: "10-broken.conflist",
		},
		{
			name:    "conf without type",
			files:   map[string]string{"10-a.conf": confListA},
			wantErr: "missing 'type'",
		},
		{
			name:    "conflist without plugins",
			files:   map[string]string{"10-x.conflist": `{"cniVersion": "1.0.0", "name": "x"}`},
			wantErr: "no plugin",
		},
		{
			name:    "no name",
			files:   map[string]string{"10-x.conflist": `{"cniVersion": "1.0.0", "plugins": [{"type": "fakebr"}]}`},
			wantErr: "no name",
		},
		{
			name: "plugins from the network's directory are inlined",
			files: map[string]string{
				"10-x.conflist":  `{"cniVersion": "1.0.0", "name": "net-x", "plugins": [{"type": "fakebr"}]}`,
				"net-x/20.conf":  `{"type": "fakeportmap"}`,
				"net-x/30.other": `{"type": "ignored"}`,
			},
			wantFile:    "10-x.conflist",
			wantName:    "net-x",
			wantPlugins: []string{"fakebr", "fakeportmap"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			cfg, err := loadConfig(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadConfig() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig() = %v", err)
			}
			if got := filepath.Base(cfg.file); got != tt.wantFile {
				t.Errorf("file = %s, want %s", got, tt.wantFile)
			}
			if cfg.list.Name != tt.wantName {
				t.Errorf("name = %s, want %s", cfg.list.Name, tt.wantName)
			}
			var got []string
			for _, p := range cfg.list.Plugins {
				got = append(got, p.Network.Type)
			}
			if diff := cmp.Diff(tt.wantPlugins, got); diff != "" {
				t.Errorf("plugins mismatch (-want +got):\n%s", diff)
			}
			// The bytes libcni caches hold every plugin.
			var raw struct {
				Name    string `json:"name"`
				Plugins []struct {
					Type string `json:"type"`
				} `json:"plugins"`
			}
			if err := json.Unmarshal(cfg.list.Bytes, &raw); err != nil {
				t.Fatal(err)
			}
			got = nil
			for _, p := range raw.Plugins {
				got = append(got, p.Type)
			}
			if diff := cmp.Diff(tt.wantPlugins, got); diff != "" || raw.Name != tt.wantName {
				t.Errorf("Bytes = %s: want name %s and plugins %v", cfg.list.Bytes, tt.wantName, tt.wantPlugins)
			}
		})
	}
}

func TestLoadConfigMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	if _, err := loadConfig(dir); err == nil || err.Error() != "no network config found in "+dir {
		t.Errorf("loadConfig() error = %v, want no network config found", err)
	}
}

func TestStatus(t *testing.T) {
	confDir := t.TempDir()
	// No loopback plugin: "lo" is brought up in-process.
	bin := stubPlugins(t, "fakebr", "fakeportmap")
	m, err := New(Options{ConfDir: confDir, BinDirs: []string{t.TempDir(), bin}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}

	err = m.Status()
	if want := "no network config found in " + confDir; err == nil || err.Error() != want {
		t.Fatalf("Status() with an empty dir = %v, want %q", err, want)
	}

	// A config dropped in later is picked up without a new Manager.
	writeFile(t, confDir, "10-a.conflist", confListA)
	if err := m.Status(); err != nil {
		t.Fatalf("Status() with %s = %v, want nil", "10-a.conflist", err)
	}

	// A config whose plugin is not installed is not usable.
	writeFile(t, confDir, "05-c.conflist", strings.Replace(confListB, "fakebr", "absent", 1))
	if err := m.Status(); err == nil || !strings.Contains(err.Error(), `plugin "absent" not found`) {
		t.Fatalf("Status() with a missing plugin = %v, want plugin not found", err)
	}
	if err := os.Remove(filepath.Join(confDir, "05-c.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := m.Status(); err != nil {
		t.Fatalf("Status() with the missing plugin's config removed = %v, want nil", err)
	}
}
