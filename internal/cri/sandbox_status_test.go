package cri

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"google.golang.org/protobuf/testing/protocmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodSandboxStatusCheckpoint(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, e *env, id string)
	}{
		{"network not ready", func(t *testing.T, e *env, id string) {
			cp, err := e.store.Read(id)
			if err != nil {
				t.Fatal(err)
			}
			cp.NetworkReady = false
			if err := e.store.Write(cp); err != nil {
				t.Fatal(err)
			}
		}},
		{"checkpoint missing", func(t *testing.T, e *env, id string) {
			if err := os.Remove(filepath.Join(e.root, id, "checkpoint.json")); err != nil {
				t.Fatal(err)
			}
		}},
		{"checkpoint corrupt", func(t *testing.T, e *env, id string) {
			if err := os.WriteFile(filepath.Join(e.root, id, "checkpoint.json"), []byte(`{"version":1,"checksum":"x","data":{}}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.runSandbox(t, sandboxConfig("web"))
			tt.spoil(t, e, id)
			st, err := e.svc.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
			if err != nil {
				t.Fatal(err)
			}
			if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.Network != nil {
				t.Errorf("state %v network %v, want NOTREADY without IP", st.Status.State, st.Status.Network)
			}
			list, err := e.svc.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
			if err != nil || len(list.Items) != 1 || list.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("ListPodSandbox = %v, %v; want the sandbox NOTREADY", list, err)
			}
		})
	}
}

func TestPodSandboxStatusUnknown(t *testing.T) {
	e := newEnv(t)
	// A container of a sandbox is not a sandbox.
	cfg := sandboxConfig("web")
	ctrID := e.createContainer(t, e.runSandbox(t, cfg), cfg, containerConfig("app"))
	for _, id := range []string{strings.Repeat("ab", 32), ctrID} {
		_, err := e.svc.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
		if !errdefs.IsNotFound(err) {
			t.Errorf("PodSandboxStatus(%s): err = %v, want not found", id, err)
		}
	}
}

func TestListPodSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.runSandbox(t, sandboxConfig("alpha"))
	b := e.runSandbox(t, sandboxConfig("beta"))
	c := e.runSandbox(t, sandboxConfig("gamma"))
	if _, err := e.svc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: c}); err != nil {
		t.Fatal(err)
	}
	// Not berth's: invisible.
	if _, err := e.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "k8s_POD_foreign_default_x_0", Config: &container.Config{Image: testPauseImage, Labels: map[string]string{"app": "alpha"}},
	}); err != nil {
		t.Fatal(err)
	}

	ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	notReady := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	tests := []struct {
		name   string
		filter *runtimeapi.PodSandboxFilter
		want   []string
	}{
		{"no filter", nil, []string{a, b, c}},
		{"empty filter", &runtimeapi.PodSandboxFilter{}, []string{a, b, c}},
		{"full id", &runtimeapi.PodSandboxFilter{Id: b}, []string{b}},
		{"id prefix", &runtimeapi.PodSandboxFilter{Id: a[:7]}, []string{a}},
		{"unknown id", &runtimeapi.PodSandboxFilter{Id: "zzz"}, nil},
		{"ready", &runtimeapi.PodSandboxFilter{State: ready}, []string{a, b}},
		{"not ready", &runtimeapi.PodSandboxFilter{State: notReady}, []string{c}},
		{"label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "beta"}}, []string{b}},
		{"label common to all", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"io.kubernetes.pod.name": "gamma"}}, []string{c}},
		{"label and state disagree", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "beta"}, State: notReady}, nil},
		{"label value differs", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "delta"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.svc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: tt.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range res.Items {
				got = append(got, it.Id)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(x, y string) bool { return x < y }), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
		})
	}

	res, err := e.svc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: a}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sandboxConfig("alpha")
	want := []*runtimeapi.PodSandbox{{
		Id: a, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		CreatedAt: testNow.UnixNano(), Labels: cfg.Labels, Annotations: cfg.Annotations,
	}}
	if diff := cmp.Diff(want, res.Items, protocmp.Transform()); diff != "" {
		t.Errorf("item (-want +got):\n%s", diff)
	}
}
