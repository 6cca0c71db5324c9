package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// cfgPod is a minimal pod as berth run hands it over (identity set).
func cfgPod(mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// cfgOptions point at a temp resolv.conf with the given content.
func cfgOptions(t *testing.T, resolvConf string) configOptions {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(file, []byte(resolvConf), 0o644); err != nil {
		t.Fatal(err)
	}
	return configOptions{
		PodLogsDir:     filepath.Join(dir, "logs"),
		HostResolvConf: file,
		TerminationDir: filepath.Join(dir, "term"),
	}
}

const hostResolv = "nameserver 10.0.0.2\nsearch corp.example.\noptions ndots:2\n"

// namespaces shortens NamespaceOption literals.
func namespaces(network, pid, ipc runtimeapi.NamespaceMode) *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{Network: network, Pid: pid, Ipc: ipc}
}

const (
	nsPod       = runtimeapi.NamespaceMode_POD
	nsContainer = runtimeapi.NamespaceMode_CONTAINER
	nsNode      = runtimeapi.NamespaceMode_NODE
)

func TestGenerateSandboxConfigFull(t *testing.T) {
	opts := cfgOptions(t, hostResolv)
	pod := cfgPod(func(p *corev1.Pod) {
		p.Labels = map[string]string{"app": "web", labelPodUID: "spoof"}
		p.Annotations = map[string]string{"note": "x"}
		p.Spec.Hostname = "h1"
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{
			{ContainerPort: 80, HostPort: 8080},
			{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "127.0.0.1"},
			{ContainerPort: 9000}, // no host port: not a mapping
		}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name:            "priv",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			Ports:           []corev1.ContainerPort{{ContainerPort: 7, HostPort: 7007, Protocol: corev1.ProtocolSCTP}},
		})
		p.Spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsUser:                ptr.To[int64](1000),
			RunAsGroup:               ptr.To[int64](2000),
			FSGroup:                  ptr.To[int64](3000),
			SupplementalGroups:       []int64{4000, 4001},
			SupplementalGroupsPolicy: ptr.To(corev1.SupplementalGroupsPolicyStrict),
			SELinuxOptions:           &corev1.SELinuxOptions{Type: "spc_t", Level: "s0"},
			Sysctls:                  []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}},
		}
	})
	got, warnings, err := generateSandboxConfig(pod, 2, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "uid-1", Attempt: 2},
		Hostname:     "h1",
		LogDirectory: filepath.Join(opts.PodLogsDir, "ns_web_uid-1"),
		DnsConfig: &runtimeapi.DNSConfig{
			Servers: []string{"10.0.0.2"}, Searches: []string{"corp.example"}, Options: []string{"ndots:2"},
		},
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080},
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
			{Protocol: runtimeapi.Protocol_SCTP, ContainerPort: 7, HostPort: 7007},
		},
		Labels: map[string]string{
			"app": "web", labelPodName: "web", labelPodNamespace: "ns", labelPodUID: "uid-1",
		},
		Annotations: map[string]string{"note": "x"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions:         namespaces(nsPod, nsContainer, nsPod),
				SelinuxOptions:           &runtimeapi.SELinuxOption{Type: "spc_t", Level: "s0"},
				RunAsUser:                &runtimeapi.Int64Value{Value: 1000},
				RunAsGroup:               &runtimeapi.Int64Value{Value: 2000},
				SupplementalGroups:       []int64{3000, 4000, 4001},
				SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict,
				Privileged:               true,
				Seccomp:                  &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
			Sysctls: map[string]string{"net.core.somaxconn": "1024"},
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	// ClusterFirst (the default) without cluster DNS is the one warning.
	if len(warnings) != 1 || !strings.Contains(warnings[0], "spec.dnsPolicy: ClusterFirst") {
		t.Errorf("warnings = %q, want one about spec.dnsPolicy", warnings)
	}
}

func TestGenerateSandboxConfigNamespaces(t *testing.T) {
	tests := []struct {
		name         string
		mutate       func(*corev1.Pod)
		want         *runtimeapi.NamespaceOption
		wantHostname string
	}{
		{"default", func(*corev1.Pod) {}, namespaces(nsPod, nsContainer, nsPod), "web"},
		{"host network keeps node hostname", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, namespaces(nsNode, nsContainer, nsPod), ""},
		{"host pid", func(p *corev1.Pod) { p.Spec.HostPID = true }, namespaces(nsPod, nsNode, nsPod), "web"},
		{"host ipc", func(p *corev1.Pod) { p.Spec.HostIPC = true }, namespaces(nsPod, nsContainer, nsNode), "web"},
		{"shared pid", func(p *corev1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) }, namespaces(nsPod, nsPod, nsPod), "web"},
		{"host pid beats shared", func(p *corev1.Pod) {
			p.Spec.HostPID = true
			p.Spec.ShareProcessNamespace = ptr.To(true)
		}, namespaces(nsPod, nsNode, nsPod), "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := generateSandboxConfig(cfgPod(tt.mutate), 0, cfgOptions(t, hostResolv))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Linux.SecurityContext.NamespaceOptions, protocmp.Transform()); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
			if got.Hostname != tt.wantHostname {
				t.Errorf("hostname = %q, want %q", got.Hostname, tt.wantHostname)
			}
			if got.Linux.SecurityContext.Privileged {
				t.Error("sandbox privileged without a privileged container")
			}
		})
	}
}

func TestGenerateSandboxConfigHostname(t *testing.T) {
	long := strings.Repeat("a", 62) + "-bcd"
	tests := []struct {
		name     string
		mutate   func(*corev1.Pod)
		want     string
		wantWarn string
	}{
		{"pod name", func(*corev1.Pod) {}, "web", ""},
		{"subdomain keeps short name", func(p *corev1.Pod) { p.Spec.Subdomain = "svc1" }, "web", ""},
		{"fqdn", func(p *corev1.Pod) {
			p.Spec.Hostname = "h"
			p.Spec.Subdomain = "svc1"
			p.Spec.SetHostnameAsFQDN = ptr.To(true)
		}, "h.svc1.ns.svc", ""},
		{"fqdn without subdomain", func(p *corev1.Pod) { p.Spec.SetHostnameAsFQDN = ptr.To(true) }, "web", "spec.setHostnameAsFQDN"},
		{"long pod name truncated without trailing dash", func(p *corev1.Pod) { p.Name = long }, strings.Repeat("a", 62), "truncated"},
		{"override", func(p *corev1.Pod) { p.Spec.HostnameOverride = ptr.To("my.host") }, "my.host", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(tt.mutate)
			pod.Spec.DNSPolicy = corev1.DNSDefault // no DNS warning
			got, warnings, err := generateSandboxConfig(pod, 0, cfgOptions(t, hostResolv))
			if err != nil {
				t.Fatal(err)
			}
			if got.Hostname != tt.want {
				t.Errorf("hostname = %q, want %q", got.Hostname, tt.want)
			}
			joined := strings.Join(warnings, "\n")
			if (tt.wantWarn == "") != (joined == "") || !strings.Contains(joined, tt.wantWarn) {
				t.Errorf("warnings = %q, want one containing %q", warnings, tt.wantWarn)
			}
		})
	}
}

func TestGenerateSandboxConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*corev1.Pod)
		wantErr string
	}{
		{"no uid", func(p *corev1.Pod) { p.UID = "" }, "metadata.uid"},
		{"no namespace", func(p *corev1.Pod) { p.Namespace = "" }, "metadata.namespace"},
		{"windows", func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }, "spec.os.name"},
		{"user namespaces", func(p *corev1.Pod) { p.Spec.HostUsers = ptr.To(false) }, "spec.hostUsers"},
		{"bad dns policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Cluster" }, "spec.dnsPolicy"},
		{"bad hostname", func(p *corev1.Pod) { p.Spec.Hostname = "Not_A_Label" }, "spec.hostname"},
		{"bad subdomain", func(p *corev1.Pod) { p.Spec.Subdomain = "a.b" }, "spec.subdomain"},
		{"fqdn too long", func(p *corev1.Pod) {
			p.Spec.Hostname = strings.Repeat("h", 40)
			p.Spec.Subdomain = strings.Repeat("s", 20)
			p.Spec.SetHostnameAsFQDN = ptr.To(true)
		}, "spec.setHostnameAsFQDN"},
		{"bad protocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 1, HostPort: 1, Protocol: "ICMP"}}
		}, "spec.containers[0].ports[0].protocol"},
		{"bad host port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 1, HostPort: 70000}}
		}, "spec.containers[0].ports[0].hostPort"},
		{"bad host ip", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 1, HostPort: 1, HostIP: "nope"}}
		}, "spec.containers[0].ports[0].hostIP"},
		{"bad groups policy", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SupplementalGroupsPolicy: ptr.To[corev1.SupplementalGroupsPolicy]("Loose")}
		}, "spec.securityContext.supplementalGroupsPolicy"},
		{"unnamed sysctl", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Value: "1"}}}
		}, "spec.securityContext.sysctls[0].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := generateSandboxConfig(cfgPod(tt.mutate), 0, cfgOptions(t, hostResolv))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestGenerateSandboxConfigWarnings(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*corev1.Pod)
		wantWarn string
	}{
		{"init host port", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", Ports: []corev1.ContainerPort{{ContainerPort: 1, HostPort: 1}}}}
		}, "spec.initContainers[0].ports[0].hostPort"},
		{"duplicate host port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 1, HostPort: 9}, {ContainerPort: 2, HostPort: 9}}
		}, "spec.containers[0].ports[1]"},
		{"pod resources", func(p *corev1.Pod) { p.Spec.Resources = &corev1.ResourceRequirements{} }, "spec.resources"},
		{"resource claims", func(p *corev1.Pod) { p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}} }, "spec.resourceClaims"},
		{"windows options", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{}}
		}, "spec.securityContext.windowsOptions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(tt.mutate)
			pod.Spec.DNSPolicy = corev1.DNSDefault
			cfg, warnings, err := generateSandboxConfig(pod, 0, cfgOptions(t, hostResolv))
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], tt.wantWarn) {
				t.Errorf("warnings = %q, want one naming %q", warnings, tt.wantWarn)
			}
			if n := len(cfg.PortMappings); n > 1 {
				t.Errorf("%d port mappings, want at most 1", n)
			}
		})
	}
}
