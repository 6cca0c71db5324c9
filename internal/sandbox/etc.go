package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Etc files of a sandbox, bind-mounted into each of its containers. The
// pause container runs with Docker networking disabled (much faster to
// start), so Docker writes none of these; berth does, as containerd does.
const (
	ResolvConf = "resolv.conf"
	Hosts      = "hosts"
	Hostname   = "hostname"
)

// EtcFiles are the contents to write.
type EtcFiles struct {
	ResolvConf []byte
	Hosts      []byte
	Hostname   []byte
}

// WriteEtc writes the /etc files of sandbox id and returns their paths by
// name.
func (s *Store) WriteEtc(id string, f EtcFiles) (map[string]string, error) {
	dir, err := s.Dir(id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox %s etc files: %w", id, err)
	}
	paths := map[string]string{}
	for name, data := range map[string][]byte{ResolvConf: f.ResolvConf, Hosts: f.Hosts, Hostname: f.Hostname} {
		p := filepath.Join(dir, name)
		// Containers read them as any user: 0644 like the host's own.
		// Not synced: a crash of the host that could lose them takes the
		// sandbox's containers down with it.
		if err := writeAtomic(p, data, 0o644, false); err != nil {
			return nil, fmt.Errorf("sandbox %s %s: %w", id, name, err)
		}
		paths[name] = p
	}
	return paths, nil
}

// EtcPaths are the paths WriteEtc wrote for id.
func (s *Store) EtcPaths(id string) (map[string]string, error) {
	dir, err := s.Dir(id)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		ResolvConf: filepath.Join(dir, ResolvConf),
		Hosts:      filepath.Join(dir, Hosts),
		Hostname:   filepath.Join(dir, Hostname),
	}, nil
}

// ResolvConfFor is the resolv.conf of a pod: the CRI DNS config when one is
// given, else the host's (as the kubelet's "Default" policy does).
func ResolvConfFor(dns *runtimeapi.DNSConfig, host []byte) []byte {
	if dns == nil || (len(dns.GetServers()) == 0 && len(dns.GetSearches()) == 0 && len(dns.GetOptions()) == 0) {
		return host
	}
	var b bytes.Buffer
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	for _, s := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return b.Bytes()
}

// HostsFor is the /etc/hosts of a pod network sandbox.
func HostsFor(hostname string, ips []string) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (berth).\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	for _, ip := range ips {
		if hostname != "" {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	return b.Bytes()
}

// ValidateResolvConf rejects DNS values that would break the file's syntax.
func ValidateResolvConf(dns *runtimeapi.DNSConfig) error {
	check := func(field string, vals []string) error {
		for i, v := range vals {
			if v == "" || strings.ContainsAny(v, "\n\r") {
				return fmt.Errorf("config.dns_config.%s[%d]: %q is not a valid entry: %w", field, i, v, errdefs.ErrInvalidArgument)
			}
		}
		return nil
	}
	if err := check("servers", dns.GetServers()); err != nil {
		return err
	}
	if err := check("searches", dns.GetSearches()); err != nil {
		return err
	}
	return check("options", dns.GetOptions())
}
