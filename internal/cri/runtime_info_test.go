package cri

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestStatus(t *testing.T) {
	ready := func(typ string) *runtimeapi.RuntimeCondition {
		return &runtimeapi.RuntimeCondition{Type: typ, Status: true}
	}
	tests := []struct {
		name    string
		arrange func(*env)
		want    []*runtimeapi.RuntimeCondition
	}{
		{
			name: "ready",
			want: []*runtimeapi.RuntimeCondition{ready(runtimeapi.RuntimeReady), ready(runtimeapi.NetworkReady)},
		},
		{
			name:    "network not ready",
			arrange: func(e *env) { e.net.statusErr = errors.New("no CNI config in /etc/cni/net.d") },
			want: []*runtimeapi.RuntimeCondition{
				ready(runtimeapi.RuntimeReady),
				{Type: runtimeapi.NetworkReady, Reason: "NetworkPluginNotReady", Message: "no CNI config in /etc/cni/net.d"},
			},
		},
		{
			name: "docker down",
			arrange: func(e *env) {
				e.docker.InjectError("Ping", fmt.Errorf("Cannot connect to the Docker daemon: %w", errdefs.ErrUnavailable))
			},
			want: []*runtimeapi.RuntimeCondition{
				{Type: runtimeapi.RuntimeReady, Reason: "DockerDaemonNotReady", Message: "Cannot connect to the Docker daemon: unavailable"},
				ready(runtimeapi.NetworkReady),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.arrange != nil {
				tt.arrange(e)
			}
			res, err := e.svc.Status(context.Background(), &runtimeapi.StatusRequest{})
			if err != nil {
				t.Fatalf("Status: %v; it reports conditions, not errors", err)
			}
			if diff := cmp.Diff(tt.want, res.Status.Conditions, protocmp.Transform()); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	e.docker.SetServerVersion(client.ServerVersionResult{Version: "27.5.1", APIVersion: "1.47"})
	res, err := e.svc.Version(context.Background(), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.VersionResponse{Version: Version, RuntimeName: "docker", RuntimeVersion: "27.5.1", RuntimeApiVersion: "v1"}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("Version (-want +got):\n%s", diff)
	}
	e.docker.InjectError("ServerVersion", errdefs.ErrUnavailable)
	if _, err := e.svc.Version(context.Background(), &runtimeapi.VersionRequest{}); !errdefs.IsUnavailable(err) {
		t.Errorf("Version with Docker down: err = %v, want unavailable", err)
	}
}

func TestRuntimeConfig(t *testing.T) {
	for _, tt := range []struct {
		driver string
		want   runtimeapi.CgroupDriver
	}{
		{"systemd", runtimeapi.CgroupDriver_SYSTEMD},
		{"cgroupfs", runtimeapi.CgroupDriver_CGROUPFS},
	} {
		t.Run(tt.driver, func(t *testing.T) {
			e := newEnv(t)
			e.docker.SetInfo(system.Info{CgroupDriver: tt.driver})
			res, err := e.svc.RuntimeConfig(context.Background(), &runtimeapi.RuntimeConfigRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.GetLinux().GetCgroupDriver(); got != tt.want {
				t.Errorf("cgroup driver = %v, want %v", got, tt.want)
			}
		})
	}
}
