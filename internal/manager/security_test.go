package manager

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

var (
	unconfined     = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	runtimeDefault = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
)

// defaultSC is what a container with no security settings gets.
func defaultSC(mutate ...func(*runtimeapi.LinuxContainerSecurityContext)) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: namespaces(nsPod, nsContainer, nsPod),
		MaskedPaths:      defaultMaskedPaths,
		ReadonlyPaths:    defaultReadonlyPaths,
		Seccomp:          unconfined,
	}
	for _, m := range mutate {
		m(sc)
	}
	return sc
}

func TestContainerSecurityContext(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.PodSecurityContext
		c    *corev1.SecurityContext
		ann  map[string]string
		want *runtimeapi.LinuxContainerSecurityContext
	}{
		{name: "nothing set", want: defaultSC()},
		{name: "pod settings inherited",
			pod: &corev1.PodSecurityContext{
				RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1001), RunAsNonRoot: ptr.To(true),
				FSGroup: ptr.To[int64](2000), SupplementalGroups: []int64{3000},
				SupplementalGroupsPolicy: ptr.To(corev1.SupplementalGroupsPolicyStrict),
				SELinuxOptions:           &corev1.SELinuxOptions{Level: "s0:c1"},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
				sc.RunAsGroup = &runtimeapi.Int64Value{Value: 1001}
				sc.SupplementalGroups = []int64{2000, 3000}
				sc.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
				sc.SelinuxOptions = &runtimeapi.SELinuxOption{Level: "s0:c1"}
				sc.Seccomp = runtimeDefault
			})},
		{name: "container overrides pod",
			pod: &corev1.PodSecurityContext{
				RunAsUser:      ptr.To[int64](1000),
				SELinuxOptions: &corev1.SELinuxOptions{Level: "s0:c1"},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			c: &corev1.SecurityContext{
				RunAsUser:      ptr.To[int64](0),
				SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("p/audit.json")},
			},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.RunAsUser = &runtimeapi.Int64Value{Value: 0}
				sc.SelinuxOptions = &runtimeapi.SELinuxOption{Type: "spc_t"}
				sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost,
					LocalhostRef: "/seccomp/p/audit.json"}
			})},
		{name: "container-only fields",
			c: &corev1.SecurityContext{
				Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "CAP_SYS_TIME"}, Drop: []corev1.Capability{"ALL"}},
				ReadOnlyRootFilesystem:   ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
			},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Capabilities = &runtimeapi.Capability{
					AddCapabilities: []string{"NET_ADMIN", "CAP_SYS_TIME"}, DropCapabilities: []string{"ALL"}}
				sc.ReadonlyRootfs = true
				sc.NoNewPrivs = true
			})},
		{name: "escalation allowed explicitly", c: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}, want: defaultSC()},
		{name: "privileged sees everything", c: &corev1.SecurityContext{Privileged: ptr.To(true)},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Privileged = true
				sc.MaskedPaths, sc.ReadonlyPaths = nil, nil
			})},
		{name: "unmasked proc", c: &corev1.SecurityContext{ProcMount: ptr.To(corev1.UnmaskedProcMount)},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.MaskedPaths, sc.ReadonlyPaths = nil, nil })},
		{name: "default proc", c: &corev1.SecurityContext{ProcMount: ptr.To(corev1.DefaultProcMount)}, want: defaultSC()},
		{name: "seccomp unconfined explicit", pod: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}},
			want: defaultSC()},
		{name: "apparmor from pod field",
			pod: &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Apparmor, sc.ApparmorProfile = runtimeDefault, "runtime/default"
			})},
		{name: "apparmor container localhost beats pod",
			pod: &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}},
			c:   &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: ptr.To("k8s-deny")}},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "k8s-deny"}
				sc.ApparmorProfile = "localhost/k8s-deny"
			})},
		{name: "apparmor annotation", ann: map[string]string{appArmorAnnotationPrefix + "app": "unconfined"},
			want: defaultSC(func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Apparmor, sc.ApparmorProfile = unconfined, "unconfined"
			})},
		{name: "apparmor annotation of another container", ann: map[string]string{appArmorAnnotationPrefix + "other": "unconfined"},
			want: defaultSC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(func(p *corev1.Pod) {
				p.Annotations = tt.ann
				p.Spec.SecurityContext = tt.pod
				p.Spec.Containers[0].SecurityContext = tt.c
			})
			got, warnings, err := containerSecurityContext(pod, &pod.Spec.Containers[0], "spec.containers[0]",
				configOptions{SeccompProfileRoot: "/seccomp"})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerSecurityContextErrors(t *testing.T) {
	tests := []struct {
		name    string
		pod     *corev1.PodSecurityContext
		c       *corev1.SecurityContext
		ann     map[string]string
		wantErr string
	}{
		{name: "root with runAsNonRoot from pod",
			pod:     &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(true)},
			wantErr: "spec.securityContext.runAsUser"},
		{name: "root from container, runAsNonRoot from pod",
			pod:     &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1), RunAsNonRoot: ptr.To(true)},
			c:       &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)},
			wantErr: "spec.containers[0].securityContext.runAsUser"},
		{name: "privileged without escalation",
			c:       &corev1.SecurityContext{Privileged: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false)},
			wantErr: "spec.containers[0].securityContext.allowPrivilegeEscalation"},
		{name: "bad proc mount", c: &corev1.SecurityContext{ProcMount: ptr.To[corev1.ProcMountType]("Half")},
			wantErr: "spec.containers[0].securityContext.procMount"},
		{name: "localhost seccomp without profile",
			pod:     &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}},
			wantErr: "spec.securityContext.seccompProfile.localhostProfile"},
		{name: "seccomp escapes root",
			c:       &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("../x")}},
			wantErr: "spec.containers[0].securityContext.seccompProfile.localhostProfile"},
		{name: "bad seccomp type",
			c:       &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: "Strict"}},
			wantErr: "spec.containers[0].securityContext.seccompProfile.type"},
		{name: "localhost apparmor without profile",
			c:       &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost}},
			wantErr: "spec.containers[0].securityContext.appArmorProfile.localhostProfile"},
		{name: "bad apparmor annotation", ann: map[string]string{appArmorAnnotationPrefix + "app": "enforce"},
			wantErr: appArmorAnnotationPrefix + "app"},
		{name: "user namespaces", wantErr: "spec.hostUsers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(func(p *corev1.Pod) {
				p.Annotations = tt.ann
				p.Spec.SecurityContext = tt.pod
				p.Spec.Containers[0].SecurityContext = tt.c
				if tt.name == "user namespaces" {
					p.Spec.HostUsers = ptr.To(false)
				}
			})
			_, _, err := containerSecurityContext(pod, &pod.Spec.Containers[0], "spec.containers[0]", configOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestContainerSecurityContextWarnings(t *testing.T) {
	pod := cfgPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{}}
	})
	_, warnings, err := containerSecurityContext(pod, &pod.Spec.Containers[0], "spec.containers[0]", configOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "spec.containers[0].securityContext.windowsOptions") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestVerifyImageUser(t *testing.T) {
	uid := func(v int64) *runtimeapi.Image { return &runtimeapi.Image{Uid: &runtimeapi.Int64Value{Value: v}} }
	tests := []struct {
		name    string
		pod     *corev1.PodSecurityContext
		c       *corev1.SecurityContext
		image   *runtimeapi.Image
		wantErr string
	}{
		{name: "no policy", image: uid(0)},
		{name: "runAsNonRoot false", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}, image: uid(0)},
		{name: "runAsUser decides", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](5)}, image: uid(0)},
		{name: "image non-root", pod: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, image: uid(1000)},
		{name: "image root", pod: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, image: uid(0), wantErr: "will run as root"},
		{name: "image user name", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, image: &runtimeapi.Image{Username: "nginx"},
			wantErr: "non-numeric user (nginx)"},
		{name: "image without user is root", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, image: &runtimeapi.Image{},
			wantErr: "will run as root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := cfgPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = tt.pod
				p.Spec.Containers[0].SecurityContext = tt.c
			})
			err := verifyImageUser(pod, &pod.Spec.Containers[0], tt.image)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
