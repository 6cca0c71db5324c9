package prober

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidate(t *testing.T) {
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	exec := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	grace := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name  string
		kind  Kind
		probe *corev1.Probe
		want  string
	}{
		{"ok exec", Liveness, &corev1.Probe{ProbeHandler: exec}, ""},
		{"ok named port", Readiness, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}, SuccessThreshold: 3}, ""},
		{"nil", Startup, nil, "startupProbe: is nil"},
		{"no handler", Readiness, &corev1.Probe{}, "readinessProbe: must specify a handler type (exec, httpGet, tcpSocket or grpc)"},
		{"two handlers", Liveness, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: exec.Exec, GRPC: &corev1.GRPCAction{Port: 1}}},
			"livenessProbe: may not specify more than 1 handler type, got exec, grpc"},
		{"empty command", Liveness, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}}, "livenessProbe.exec.command: must not be empty"},
		{"unknown port name", Readiness, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("db")}}},
			`readinessProbe.tcpSocket.port: port "db": container "app" has no port of this name`},
		{"scheme", Readiness, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80), Scheme: "ftp"}}},
			`readinessProbe.httpGet.scheme: unsupported value "ftp": must be HTTP or HTTPS`},
		{"grpc port", Liveness, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 0}}}, "livenessProbe.grpc.port: must be between 1 and 65535, got 0"},
		{"negative period", Readiness, &corev1.Probe{ProbeHandler: exec, PeriodSeconds: -1}, "readinessProbe.periodSeconds: must be greater than or equal to 0, got -1"},
		{"startup successThreshold", Startup, &corev1.Probe{ProbeHandler: exec, SuccessThreshold: 2}, "startupProbe.successThreshold: must be 1, got 2"},
		{"grace on readiness", Readiness, &corev1.Probe{ProbeHandler: exec, TerminationGracePeriodSeconds: grace(5)}, "readinessProbe.terminationGracePeriodSeconds: must not be set for readinessProbes"},
		{"grace zero", Liveness, &corev1.Probe{ProbeHandler: exec, TerminationGracePeriodSeconds: grace(0)}, "livenessProbe.terminationGracePeriodSeconds: must be greater than 0, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := Validate(tc.kind, tc.probe, c); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate = %q\nwant       %q", got, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got := withDefaults(&corev1.Probe{InitialDelaySeconds: 4})
	want := &corev1.Probe{InitialDelaySeconds: 4, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGracePeriodSeconds(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: n(60)}}
	if got := GracePeriodSeconds(pod, &corev1.Probe{TerminationGracePeriodSeconds: n(5)}); got != 5 {
		t.Errorf("probe's = %d, want 5", got)
	}
	if got := GracePeriodSeconds(pod, &corev1.Probe{}); got != 60 {
		t.Errorf("pod's = %d, want 60", got)
	}
	if got := GracePeriodSeconds(&corev1.Pod{}, nil); got != 30 {
		t.Errorf("default = %d, want 30", got)
	}
}
