package translate

import (
	"maps"
	"slices"
	"strings"
)

const sysctlsField = "config.linux.sysctls"

// Kernel namespaces a sysctl can belong to.
const (
	sysctlNet = "net"
	sysctlIPC = "ipc"
	sysctlUTS = "uts"
)

// sysctls checks the pod's sysctls with the kubelet's rules: only sysctls of
// a namespace the pod owns, since the rest would change the node. They go
// on the pause container, whose namespaces the containers join.
func sysctls(in map[string]string, hostNetwork, hostIPC bool) (map[string]string, error) {
	// Sorted, so the same request always fails on the same key.
	for _, name := range slices.Sorted(maps.Keys(in)) {
		field := keyed(sysctlsField, name)
		value := in[name]
		if name == "" {
			return nil, invalidf(field, "empty name")
		}
		if malformedSysctl(name) {
			return nil, invalidf(field, "malformed name")
		}
		if strings.ContainsAny(value, "\n+") {
			return nil, invalidf(field, "value %q contains a newline or '+'", value)
		}
		switch sysctlNamespace(name) {
		case sysctlNet:
			if hostNetwork {
				return nil, invalidf(field, "not allowed with host network: it would change the node's")
			}
		case sysctlUTS:
			if hostNetwork {
				return nil, invalidf(field, "not allowed with host network, which shares the node's UTS namespace")
			}
		case sysctlIPC:
			if hostIPC {
				return nil, invalidf(field, "not allowed with host IPC: it would change the node's")
			}
		default:
			return nil, invalidf(field, "not a namespaced sysctl: it would change the node's")
		}
	}
	if len(in) == 0 {
		return nil, nil
	}
	return maps.Clone(in), nil
}

// malformedSysctl reports an empty element ("net..x", "/net") or a
// character no sysctl has: runc turns the name into a path under
// /proc/sys, which must not reach anywhere else.
func malformedSysctl(name string) bool {
	if strings.ContainsAny(name, " \t\n=\x00") {
		return true
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' || name[i] == '/' {
			if i == start {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// sysctlNamespace returns the namespace of a sysctl, "" for none.
func sysctlNamespace(name string) string {
	n := normalizeSysctl(name)
	switch {
	case n == "kernel.sem", strings.HasPrefix(n, "kernel.shm"), strings.HasPrefix(n, "kernel.msg"), strings.HasPrefix(n, "fs.mqueue."):
		return sysctlIPC
	case strings.HasPrefix(n, "net."):
		return sysctlNet
	case n == "kernel.hostname", n == "kernel.domainname":
		return sysctlUTS
	}
	return ""
}

// normalizeSysctl turns the slash form ("net/ipv4/conf/eth0.100/forwarding")
// into the dot form, swapping the separators as the kubelet does, so both
// forms are classified alike.
func normalizeSysctl(name string) string {
	dot, slash := strings.IndexByte(name, '.'), strings.IndexByte(name, '/')
	if slash == -1 || (dot != -1 && dot < slash) {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}
