package manager

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestParseResolvConf(t *testing.T) {
	in := `# comment
; also a comment
nameserver 1.1.1.1
nameserver   8.8.8.8
search a.example b.example
search c.example. . d.example
options rotate
options ndots:3 timeout:1
domain ignored.example
`
	got, err := parseResolvConf(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.DNSConfig{
		Servers:  []string{"1.1.1.1", "8.8.8.8"},
		Searches: []string{"c.example", "d.example"},
		Options:  []string{"ndots:3", "timeout:1"},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseResolvConf(strings.NewReader("nameserver\n")); err == nil {
		t.Error("nameserver without address: no error")
	}
}

func TestPodDNSConfig(t *testing.T) {
	host := &runtimeapi.DNSConfig{Servers: []string{"10.0.0.2"}, Searches: []string{"corp.example"}, Options: []string{"ndots:2"}}
	tests := []struct {
		name     string
		policy   corev1.DNSPolicy
		hostNet  bool
		dns      *corev1.PodDNSConfig
		want     *runtimeapi.DNSConfig
		wantWarn []string
	}{
		{name: "empty is ClusterFirst: falls back to host", want: host, wantWarn: []string{"spec.dnsPolicy: ClusterFirst"}},
		{name: "ClusterFirst", policy: corev1.DNSClusterFirst, want: host, wantWarn: []string{"spec.dnsPolicy: ClusterFirst"}},
		{name: "ClusterFirst on host network is Default", policy: corev1.DNSClusterFirst, hostNet: true, want: host},
		{name: "ClusterFirstWithHostNet", policy: corev1.DNSClusterFirstWithHostNet, hostNet: true, want: host,
			wantWarn: []string{"spec.dnsPolicy: ClusterFirstWithHostNet"}},
		{name: "Default", policy: corev1.DNSDefault, want: host},
		{name: "Default merges dnsConfig", policy: corev1.DNSDefault,
			dns: &corev1.PodDNSConfig{
				Nameservers: []string{"10.0.0.2", "9.9.9.9"},
				Searches:    []string{"pod.example", "corp.example"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "edns0"}},
			},
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.0.0.2", "9.9.9.9"},
				Searches: []string{"corp.example", "pod.example"},
				Options:  []string{"ndots:1", "edns0"},
			}},
		{name: "None uses dnsConfig only", policy: corev1.DNSNone,
			dns:  &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"x.example"}},
			want: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}, Searches: []string{"x.example"}, Options: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := cfgOptions(t, hostResolv).withDefaults()
			pod := cfgPod(func(p *corev1.Pod) {
				p.Spec.DNSPolicy = tt.policy
				p.Spec.HostNetwork = tt.hostNet
				p.Spec.DNSConfig = tt.dns
			})
			got, warnings, err := podDNSConfig(pod, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if len(warnings) != len(tt.wantWarn) {
				t.Fatalf("warnings = %q, want %d", warnings, len(tt.wantWarn))
			}
			for i, w := range tt.wantWarn {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func TestPodDNSConfigErrors(t *testing.T) {
	opts := cfgOptions(t, hostResolv).withDefaults()
	_, _, err := podDNSConfig(cfgPod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }), opts)
	if err == nil || !strings.Contains(err.Error(), "spec.dnsConfig") {
		t.Errorf("None without dnsConfig: err = %v", err)
	}
	opts.HostResolvConf = "/nonexistent/resolv.conf"
	_, _, err = podDNSConfig(cfgPod(), opts)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/resolv.conf") {
		t.Errorf("missing resolv.conf: err = %v", err)
	}
	// None never reads the host file.
	dns := &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}
	if _, _, err := podDNSConfig(cfgPod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone; p.Spec.DNSConfig = dns }), opts); err != nil {
		t.Errorf("None with missing host file: %v", err)
	}
}

func TestPodDNSConfigLoopback(t *testing.T) {
	opts := cfgOptions(t, "nameserver 127.0.0.53\n").withDefaults()
	pod := cfgPod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSDefault })
	_, warnings, err := podDNSConfig(pod, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "127.0.0.53") {
		t.Errorf("pod network: warnings = %q, want one about 127.0.0.53", warnings)
	}
	pod.Spec.HostNetwork = true
	if _, warnings, _ = podDNSConfig(pod, opts); len(warnings) != 0 {
		t.Errorf("host network: warnings = %q, want none", warnings)
	}
}

func TestFitDNSLimits(t *testing.T) {
	many := func(n int, f string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf(f, i))
		}
		return out
	}
	long := strings.Repeat("x", 254)
	tests := []struct {
		name string
		in   *runtimeapi.DNSConfig
		want *runtimeapi.DNSConfig
		warn int
	}{
		{"within limits", &runtimeapi.DNSConfig{Servers: many(3, "10.0.0.%d"), Searches: many(32, "s%d")},
			&runtimeapi.DNSConfig{Servers: many(3, "10.0.0.%d"), Searches: many(32, "s%d")}, 0},
		{"four nameservers", &runtimeapi.DNSConfig{Servers: many(4, "10.0.0.%d")},
			&runtimeapi.DNSConfig{Servers: many(3, "10.0.0.%d")}, 1},
		{"33 searches", &runtimeapi.DNSConfig{Searches: many(33, "s%d")},
			&runtimeapi.DNSConfig{Searches: many(32, "s%d")}, 1},
		{"search path too long", &runtimeapi.DNSConfig{Searches: []string{"a", long, "b"}},
			&runtimeapi.DNSConfig{Searches: []string{"a", "b"}}, 1},
		// 10 paths of 250 characters joined are 2509 > 2048: 8 fit (2007).
		{"search line too long", &runtimeapi.DNSConfig{Searches: many(10, "%d"+strings.Repeat("y", 249))},
			&runtimeapi.DNSConfig{Searches: many(8, "%d"+strings.Repeat("y", 249))}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings := fitDNSLimits(tt.in)
			if diff := cmp.Diff(tt.want, tt.in, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(warnings) != tt.warn {
				t.Errorf("warnings = %q, want %d", warnings, tt.warn)
			}
		})
	}
}
