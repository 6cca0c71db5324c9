package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestCheckpointRoundTrip(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{ID: testID, Name: "p", Namespace: "n", UID: "u", NetworkReady: true, IPs: []string{"10.0.0.2"},
		PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}}
	if err := s.Write(cp); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(testID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cp, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	ids, err := s.List()
	if err != nil || len(ids) != 1 || ids[0] != testID {
		t.Errorf("List = %v, %v", ids, err)
	}
	if err := s.Remove(testID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(testID); !errdefs.IsNotFound(err) {
		t.Errorf("Read after Remove: %v, want NotFound", err)
	}
	if err := s.Remove(testID); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestCheckpointCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewStore(dir)
	if err := s.Write(Checkpoint{ID: testID, Name: "p"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, testID, checkpointFile)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), `"name":"p"`, `"name":"q"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(testID); !errdefs.IsDataLoss(err) {
		t.Errorf("Read of tampered checkpoint: %v, want DataLoss", err)
	}
}

func TestStoreRefusesBadIDs(t *testing.T) {
	s, _ := NewStore(t.TempDir())
	for _, id := range []string{"", "../../etc", "abc", strings.Repeat("g", 64)} {
		if _, err := s.Dir(id); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Dir(%q) = %v, want InvalidArgument", id, err)
		}
	}
}

func TestResolvConfFor(t *testing.T) {
	host := []byte("nameserver 192.0.2.1\n")
	tests := []struct {
		name string
		dns  *runtimeapi.DNSConfig
		want string
	}{
		{"nil uses host", nil, "nameserver 192.0.2.1\n"},
		{"empty uses host", &runtimeapi.DNSConfig{}, "nameserver 192.0.2.1\n"},
		{"given", &runtimeapi.DNSConfig{Servers: []string{"192.0.2.9", "192.0.2.10"}, Searches: []string{"a.svc", "svc"}, Options: []string{"ndots:5"}},
			"search a.svc svc\nnameserver 192.0.2.9\nnameserver 192.0.2.10\noptions ndots:5\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(ResolvConfFor(tt.dns, host)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if err := ValidateResolvConf(&runtimeapi.DNSConfig{Servers: []string{"1.2.3.4\nnameserver 6.6.6.6"}}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "config.dns_config.servers[0]") {
		t.Errorf("ValidateResolvConf = %v", err)
	}
}

func TestWriteEtc(t *testing.T) {
	s, _ := NewStore(t.TempDir())
	paths, err := s.WriteEtc(testID, EtcFiles{ResolvConf: []byte("r"), Hosts: HostsFor("h", []string{"10.0.0.2"}), Hostname: []byte("h\n")})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.EtcPaths(testID)
	if d := cmp.Diff(want, paths); d != "" {
		t.Errorf("paths (-want +got):\n%s", d)
	}
	b, _ := os.ReadFile(paths[Hosts])
	if !strings.Contains(string(b), "10.0.0.2\th\n") {
		t.Errorf("hosts = %q", b)
	}
	fi, _ := os.Stat(paths[ResolvConf])
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("resolv.conf mode %v", fi.Mode())
	}
}
