package translate

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fullHost has every capability Docker knows (a short list stands in for
// them), AppArmor and CAP_SYS_RESOURCE.
func fullHost() Host {
	return Host{
		Capabilities:    []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"},
		AllCapabilities: true,
		MinOOMScoreAdj:  -1000,
		AppArmor:        true,
	}
}

// limitedHost is an unprivileged LXC container: no CAP_SYS_RESOURCE, so no
// oom_score_adj below its own, and no AppArmor.
func limitedHost() Host {
	return Host{
		Capabilities:   []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
		MinOOMScoreAdj: -500,
	}
}

// tcase is one table row: edit changes the base input, want the base
// result; errField set means an error is expected whose message starts
// with that CRI field path and whose kind errKind reports.
type tcase[P any] struct {
	name     string
	host     *Host
	edit     func(*P)
	want     func(*Result)
	errField string
	errKind  func(error) bool
}

func run[P any](t *testing.T, cases []tcase[P], base func() P, baseResult func() Result, translate func(P, Host) (Result, error)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			if tc.edit != nil {
				tc.edit(&p)
			}
			h := fullHost()
			if tc.host != nil {
				h = *tc.host
			}
			got, err := translate(p, h)
			if tc.errField != "" {
				checkErr(t, err, tc.errField, tc.errKind)
				if diff := cmp.Diff(Result{}, got, cmpOpts...); diff != "" {
					t.Errorf("result with error is not zero (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := baseResult()
			if tc.want != nil {
				tc.want(&want)
			}
			if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func checkErr(t *testing.T, err error, field string, kind func(error) bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %s", field)
	}
	if !strings.HasPrefix(err.Error(), field+": ") {
		t.Errorf("error %q does not start with the field %q", err, field)
	}
	if kind == nil {
		t.Fatalf("test case names no error kind")
	}
	if !kind(err) {
		t.Errorf("error %q has the wrong kind", err)
	}
}

// The zero values of these types hold unexported fields; equality is all
// the tests need.
var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, network.Port{})}

func noHealthcheck() *container.HealthConfig {
	return &container.HealthConfig{Test: []string{"NONE"}}
}

func i64(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }

// Accessors that create the path to a field, so an edit is one line.

func csc(p *ContainerParams) *runtimeapi.LinuxContainerSecurityContext {
	if p.Config.Linux == nil {
		p.Config.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	if p.Config.Linux.SecurityContext == nil {
		p.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{}
	}
	return p.Config.Linux.SecurityContext
}

func cns(p *ContainerParams) *runtimeapi.NamespaceOption {
	sc := csc(p)
	if sc.NamespaceOptions == nil {
		sc.NamespaceOptions = &runtimeapi.NamespaceOption{}
	}
	return sc.NamespaceOptions
}

func ccaps(p *ContainerParams) *runtimeapi.Capability {
	sc := csc(p)
	if sc.Capabilities == nil {
		sc.Capabilities = &runtimeapi.Capability{}
	}
	return sc.Capabilities
}

func cres(p *ContainerParams) *runtimeapi.LinuxContainerResources {
	csc(p)
	if p.Config.Linux.Resources == nil {
		p.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{}
	}
	return p.Config.Linux.Resources
}

func ssc(p *SandboxParams) *runtimeapi.LinuxSandboxSecurityContext {
	if p.Config.Linux == nil {
		p.Config.Linux = &runtimeapi.LinuxPodSandboxConfig{}
	}
	if p.Config.Linux.SecurityContext == nil {
		p.Config.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{}
	}
	return p.Config.Linux.SecurityContext
}

func sns(p *SandboxParams) *runtimeapi.NamespaceOption {
	sc := ssc(p)
	if sc.NamespaceOptions == nil {
		sc.NamespaceOptions = &runtimeapi.NamespaceOption{}
	}
	return sc.NamespaceOptions
}

// privilegedSandbox lets the container be privileged.
func privilegedSandbox(p *ContainerParams) {
	p.SandboxConfig.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
}
