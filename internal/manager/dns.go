package manager

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The resolver limits the kubelet enforces (the apiserver's expanded DNS
// config limits): glibc reads at most three nameservers and aborts on a
// search path longer than a DNS name.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
	maxDNSSearchPathChars = validation.DNS1123SubdomainMaxLength
	maxHostnameChars      = 63
	maxFQDNChars          = 64
)

// podDNSConfig is the kubelet's GetPodDNS without cluster DNS: berth run
// knows no cluster DNS server, so ClusterFirst falls back to the host's
// resolv.conf with a warning, as the kubelet does when --cluster-dns is
// unset.
func podDNSConfig(pod *corev1.Pod, opts configOptions) (*runtimeapi.DNSConfig, []string, error) {
	var warnings []string
	cfg := &runtimeapi.DNSConfig{}
	switch policy := pod.Spec.DNSPolicy; policy {
	case corev1.DNSNone:
		// Only spec.dnsConfig counts; the apiserver requires it, so
		// must we, or the pod gets an empty resolv.conf.
		if pod.Spec.DNSConfig == nil {
			return nil, nil, fmt.Errorf("spec.dnsConfig: required when spec.dnsPolicy is %q", corev1.DNSNone)
		}
	case "", corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault:
		// ClusterFirst on the host network means Default to the kubelet.
		clusterFirst := policy == corev1.DNSClusterFirstWithHostNet ||
			(policy != corev1.DNSDefault && !pod.Spec.HostNetwork)
		if clusterFirst {
			shown := policy
			if shown == "" {
				shown = corev1.DNSClusterFirst
			}
			warnings = append(warnings, fmt.Sprintf(
				"spec.dnsPolicy: %s needs a cluster DNS server, which berth run has none of; using the host's %s (policy %s)",
				shown, opts.HostResolvConf, corev1.DNSDefault))
		}
		host, err := readResolvConf(opts.HostResolvConf)
		if err != nil {
			return nil, nil, err
		}
		cfg = host
		if !pod.Spec.HostNetwork {
			warnings = append(warnings, loopbackWarnings(cfg.Servers, opts.HostResolvConf)...)
		}
	default:
		return nil, nil, fmt.Errorf("spec.dnsPolicy: unsupported value %q (want %s, %s, %s or %s)",
			policy, corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = uniqueStrings(append(cfg.Servers, dc.Nameservers...))
		cfg.Searches = uniqueStrings(append(cfg.Searches, dc.Searches...))
		cfg.Options = mergeDNSOptions(cfg.Options, dc.Options)
	}
	w := fitDNSLimits(cfg)
	return cfg, append(warnings, w...), nil
}

// loopbackWarnings flags host nameservers such as systemd-resolved's
// 127.0.0.53: inside the pod's own network namespace they answer nothing.
func loopbackWarnings(servers []string, file string) []string {
	var warnings []string
	for _, s := range servers {
		if ip, err := netip.ParseAddr(s); err == nil && ip.IsLoopback() {
			warnings = append(warnings, fmt.Sprintf(
				"%s: nameserver %s is a loopback address, unreachable from the pod's network namespace; point HostResolvConf at the upstream resolv.conf (e.g. /run/systemd/resolve/resolv.conf)",
				file, s))
		}
	}
	return warnings
}

// readResolvConf parses a resolv.conf as the kubelet does: nameservers
// accumulate, the last search and options lines win.
func readResolvConf(path string) (*runtimeapi.DNSConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read host resolv.conf: %w", err)
	}
	defer f.Close()
	cfg, err := parseResolvConf(f)
	if err != nil {
		return nil, fmt.Errorf("parse host resolv.conf %q: %w", path, err)
	}
	return cfg, nil
}

func parseResolvConf(r io.Reader) (*runtimeapi.DNSConfig, error) {
	cfg := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				return nil, fmt.Errorf("line %d: nameserver without an address", n)
			}
			cfg.Servers = append(cfg.Servers, fields[1])
		case "search":
			// The same domain with and without its trailing dot counts
			// once against the search limits.
			cfg.Searches = nil
			for _, s := range fields[1:] {
				if s != "." {
					cfg.Searches = append(cfg.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			cfg.Options = slices.Clone(fields[1:])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// mergeDNSOptions lets the pod's options override the host's by name;
// unlike the kubelet's map walk it keeps first-seen order, so the same pod
// always gets the same resolv.conf.
func mergeDNSOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	var names []string
	values := map[string]string{}
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	for _, op := range base {
		name, value, _ := strings.Cut(op, ":")
		set(name, value)
	}
	for _, op := range pod {
		value := ""
		if op.Value != nil {
			value = *op.Value
		}
		set(op.Name, value)
	}
	options := make([]string, 0, len(names))
	for _, name := range names {
		if v := values[name]; v != "" {
			options = append(options, name+":"+v)
		} else {
			options = append(options, name)
		}
	}
	return options
}

// fitDNSLimits trims the config to what resolvers accept, as the kubelet
// does, and says what it dropped.
func fitDNSLimits(cfg *runtimeapi.DNSConfig) []string {
	var warnings []string
	if len(cfg.Servers) > maxDNSNameservers {
		cfg.Servers = cfg.Servers[:maxDNSNameservers]
		warnings = append(warnings, fmt.Sprintf(
			"DNS nameserver limit (%d) exceeded, some nameservers were omitted; the applied nameserver line is: %s",
			maxDNSNameservers, strings.Join(cfg.Servers, " ")))
	}
	searches, trimmed := cfg.Searches, false
	if len(searches) > maxDNSSearchPaths {
		searches, trimmed = searches[:maxDNSSearchPaths], true
	}
	kept := searches[:0:0]
	for _, s := range searches {
		if len(s) > maxDNSSearchPathChars {
			trimmed = true
			continue
		}
		kept = append(kept, s)
	}
	// Drop from the end until the joined line fits.
	for len(kept) > 0 && len(strings.Join(kept, " ")) > maxDNSSearchListChars {
		kept, trimmed = kept[:len(kept)-1], true
	}
	if trimmed {
		warnings = append(warnings, fmt.Sprintf(
			"DNS search line limits (%d paths, %d characters) exceeded, some search paths were omitted; the applied search line is: %s",
			maxDNSSearchPaths, maxDNSSearchListChars, strings.Join(kept, " ")))
	}
	if len(cfg.Searches) > 0 {
		cfg.Searches = kept
	}
	return warnings
}

func uniqueStrings(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// podHostname is the kubelet's GeneratePodHostNameAndDomain followed by
// GetNodenameForKernel: the short name unless setHostnameAsFQDN asks for
// the FQDN in the kernel's nodename.
func podHostname(pod *corev1.Pod, opts configOptions) (string, []string, error) {
	if o := pod.Spec.HostnameOverride; o != nil {
		if msgs := validation.IsDNS1123Subdomain(*o); len(msgs) > 0 {
			return "", nil, fmt.Errorf("spec.hostnameOverride: %q: %s", *o, strings.Join(msgs, "; "))
		}
		return truncateHostname(*o)
	}
	name := pod.Name
	if pod.Spec.Hostname != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Hostname); len(msgs) > 0 {
			return "", nil, fmt.Errorf("spec.hostname: %q: %s", pod.Spec.Hostname, strings.Join(msgs, "; "))
		}
		name = pod.Spec.Hostname
	}
	host, warnings, err := truncateHostname(name)
	if err != nil {
		return "", nil, err
	}
	if pod.Spec.Subdomain == "" {
		if fqdn := pod.Spec.SetHostnameAsFQDN; fqdn != nil && *fqdn {
			warnings = append(warnings, "spec.setHostnameAsFQDN: ignored without spec.subdomain: the pod has no domain")
		}
		return host, warnings, nil
	}
	if msgs := validation.IsDNS1123Label(pod.Spec.Subdomain); len(msgs) > 0 {
		return "", nil, fmt.Errorf("spec.subdomain: %q: %s", pod.Spec.Subdomain, strings.Join(msgs, "; "))
	}
	if fqdn := pod.Spec.SetHostnameAsFQDN; fqdn == nil || !*fqdn {
		return host, warnings, nil
	}
	// Without a cluster domain the kubelet would leave a trailing dot;
	// the FQDN then ends at svc.
	domain := strings.TrimSuffix(fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, opts.ClusterDomain), ".")
	full := host + "." + domain
	if len(full) > maxFQDNChars {
		return "", nil, fmt.Errorf("spec.setHostnameAsFQDN: FQDN %q is %d characters, longer than the kernel's %d",
			full, len(full), maxFQDNChars)
	}
	return full, warnings, nil
}

// truncateHostname caps a hostname at the kernel's 63 characters; a pod
// name may be longer.
func truncateHostname(name string) (string, []string, error) {
	if len(name) <= maxHostnameChars {
		return name, nil, nil
	}
	short := strings.TrimRight(name[:maxHostnameChars], "-.")
	if short == "" {
		return "", nil, fmt.Errorf("hostname %q: nothing left after truncating to %d characters", name, maxHostnameChars)
	}
	return short, []string{fmt.Sprintf("hostname %q is longer than %d characters; truncated to %q", name, maxHostnameChars, short)}, nil
}
