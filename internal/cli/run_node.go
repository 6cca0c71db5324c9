package cli

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/berth-project/berth/internal/manager/podenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// localNode describes this host as the kubelet would its node: name,
// allocatable CPU and memory (all of it: no reservations here), and its
// addresses.
func localNode() podenv.Node {
	name, _ := os.Hostname()
	n := podenv.Node{Name: name, Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
	}}
	if mem := memTotal(); mem > 0 {
		n.Allocatable[corev1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
	}
	n.HostIPs = hostIPs()
	return n
}

// memTotal is MemTotal of /proc/meminfo in bytes, or 0.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), "MemTotal: %d kB", &kb); err == nil {
			return kb * 1024
		}
	}
	return 0
}

// hostIPs: the address the host uses to reach out (no packet is sent),
// else the first global unicast address of an interface.
func hostIPs() []string {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsLoopback() {
			return []string{a.IP.String()}
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsGlobalUnicast() {
			return []string{ipn.IP.String()}
		}
	}
	return nil
}
