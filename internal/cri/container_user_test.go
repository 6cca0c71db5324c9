package cri

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseProcUser(t *testing.T) {
	status := "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\nGid:\t1001\t1001\t1001\t1001\nFDSize:\t64\nGroups:\t1000 1234 50000 \n"
	want := &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: 1000, Gid: 1001, SupplementalGroups: []int64{1000, 1234, 50000}}}
	if diff := cmp.Diff(want, parseProcUser([]byte(status)), protocmp.Transform()); diff != "" {
		t.Errorf("parseProcUser (-want +got):\n%s", diff)
	}
	if got := parseProcUser([]byte("Name:\tsh\nGroups:\t\n")); got != nil {
		t.Errorf("no Uid/Gid lines: %v, want nil", got)
	}
	// This process: what the kernel says, not nil.
	self := userOf(&container.State{Running: true, Pid: os.Getpid()})
	if self == nil || self.Linux.Uid != int64(os.Getuid()) || self.Linux.Gid != int64(os.Getgid()) {
		t.Errorf("userOf(this process) = %v", self)
	}
	if userOf(&container.State{Running: false, Pid: os.Getpid()}) != nil {
		t.Error("a container that is not running has a user")
	}
}
