package prober

import (
	"errors"
	"fmt"
	"strings"

	"github.com/berth-project/berth/internal/manager/handler"
	corev1 "k8s.io/api/core/v1"
)

// The API server's defaults; a pod read from a file has not been through
// it, so a zero here means "unset".
const (
	defaultPeriodSeconds    = 10
	defaultTimeoutSeconds   = 1
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
	defaultGracePeriod      = 30
)

// Validate checks a probe as the API server and kubelet would, naming the
// field relative to the container ("livenessProbe.periodSeconds: ...");
// prefix it with "spec.containers[i]." for the user. Beyond the API
// server, a named port must exist on the container: the kubelet would
// otherwise error on every probe and, for liveness, never restart.
func Validate(kind Kind, p *corev1.Probe, c *corev1.Container) error {
	f := kind.field()
	if p == nil {
		return fmt.Errorf("%s: is nil", f)
	}
	var errs []error
	bad := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", f, sub, fmt.Sprintf(format, args...)))
	}
	for _, n := range []struct {
		name string
		v    int32
	}{
		{"initialDelaySeconds", p.InitialDelaySeconds}, {"timeoutSeconds", p.TimeoutSeconds},
		{"periodSeconds", p.PeriodSeconds}, {"successThreshold", p.SuccessThreshold},
		{"failureThreshold", p.FailureThreshold},
	} {
		if n.v < 0 {
			bad(n.name, "must be greater than or equal to 0, got %d", n.v)
		}
	}
	if kind != Readiness && p.SuccessThreshold > 1 {
		bad("successThreshold", "must be 1, got %d", p.SuccessThreshold)
	}
	if g := p.TerminationGracePeriodSeconds; g != nil {
		switch {
		case kind == Readiness:
			bad("terminationGracePeriodSeconds", "must not be set for readinessProbes")
		case *g <= 0:
			bad("terminationGracePeriodSeconds", "must be greater than 0, got %d", *g)
		}
	}

	var set []string
	if p.Exec != nil {
		set = append(set, "exec")
		if len(p.Exec.Command) == 0 {
			bad("exec.command", "must not be empty")
		}
	}
	if p.HTTPGet != nil {
		set = append(set, "httpGet")
		if _, err := handler.ResolvePort(p.HTTPGet.Port, c); err != nil {
			bad("httpGet.port", "%v", err)
		}
		if s := p.HTTPGet.Scheme; s != "" && s != corev1.URISchemeHTTP && s != corev1.URISchemeHTTPS {
			bad("httpGet.scheme", "unsupported value %q: must be HTTP or HTTPS", s)
		}
	}
	if p.TCPSocket != nil {
		set = append(set, "tcpSocket")
		if _, err := handler.ResolvePort(p.TCPSocket.Port, c); err != nil {
			bad("tcpSocket.port", "%v", err)
		}
	}
	if p.GRPC != nil {
		set = append(set, "grpc")
		if p.GRPC.Port < 1 || p.GRPC.Port > 65535 {
			bad("grpc.port", "must be between 1 and 65535, got %d", p.GRPC.Port)
		}
	}
	switch {
	case len(set) == 0:
		errs = append(errs, fmt.Errorf("%s: must specify a handler type (exec, httpGet, tcpSocket or grpc)", f))
	case len(set) > 1:
		errs = append(errs, fmt.Errorf("%s: may not specify more than 1 handler type, got %s", f, strings.Join(set, ", ")))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy with the API server's defaults in the
// zero fields.
func withDefaults(p *corev1.Probe) *corev1.Probe {
	q := p.DeepCopy()
	if q.PeriodSeconds == 0 {
		q.PeriodSeconds = defaultPeriodSeconds
	}
	if q.TimeoutSeconds == 0 {
		q.TimeoutSeconds = defaultTimeoutSeconds
	}
	if q.SuccessThreshold == 0 {
		q.SuccessThreshold = defaultSuccessThreshold
	}
	if q.FailureThreshold == 0 {
		q.FailureThreshold = defaultFailureThreshold
	}
	return q
}

// GracePeriodSeconds is the grace period to kill a container with after
// its liveness or startup probe failed: the probe's
// terminationGracePeriodSeconds when set, else the pod's. Killing is the
// caller's job.
func GracePeriodSeconds(pod *corev1.Pod, p *corev1.Probe) int64 {
	if p != nil && p.TerminationGracePeriodSeconds != nil {
		return *p.TerminationGracePeriodSeconds
	}
	if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return defaultGracePeriod
}
