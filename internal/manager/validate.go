package manager

import (
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/manager/prober"
	corev1 "k8s.io/api/core/v1"
)

// admit checks what can be checked before anything runs, and lists the
// Pod fields berth run does not honour as warnings: none is ignored
// silently. Fields whose meaning cannot be kept are errors.
func admit(pod *corev1.Pod) (warnings []string, err error) {
	var errs []error
	spec := &pod.Spec
	if len(spec.Containers) == 0 {
		errs = append(errs, errors.New("spec.containers: at least one container is required"))
	}
	seen := map[string]bool{}
	for _, list := range []struct {
		field string
		cs    []corev1.Container
	}{{"spec.initContainers", spec.InitContainers}, {"spec.containers", spec.Containers}} {
		for i := range list.cs {
			c := &list.cs[i]
			field := fmt.Sprintf("%s[%d]", list.field, i)
			if c.Name == "" {
				errs = append(errs, fmt.Errorf("%s.name: required", field))
			} else if seen[c.Name] {
				errs = append(errs, fmt.Errorf("%s.name: duplicate container name %q", field, c.Name))
			}
			seen[c.Name] = true
			if c.Image == "" {
				errs = append(errs, fmt.Errorf("%s.image: required", field))
			}
			for _, p := range []struct {
				kind  prober.Kind
				probe *corev1.Probe
			}{{prober.Startup, c.StartupProbe}, {prober.Liveness, c.LivenessProbe}, {prober.Readiness, c.ReadinessProbe}} {
				if p.probe == nil {
					continue
				}
				if list.field == "spec.initContainers" && !isSidecar(c) {
					errs = append(errs, fmt.Errorf("%s: probes are not allowed on init containers", field))
					break
				}
				if err := prober.Validate(p.kind, p.probe, c); err != nil {
					errs = append(errs, fmt.Errorf("%s.%w", field, err))
				}
			}
			if len(c.VolumeDevices) > 0 {
				errs = append(errs, fmt.Errorf("%s.volumeDevices: raw block devices are not supported by berth run", field))
			}
		}
	}
	if len(spec.EphemeralContainers) > 0 {
		errs = append(errs, errors.New("spec.ephemeralContainers: not supported by berth run"))
	}
	if len(spec.ResourceClaims) > 0 {
		errs = append(errs, errors.New("spec.resourceClaims: dynamic resource allocation is not supported by berth run"))
	}
	warn := func(set bool, format string, args ...any) {
		if set {
			warnings = append(warnings, fmt.Sprintf(format, args...))
		}
	}
	warn(len(spec.HostAliases) > 0, "spec.hostAliases: not written to /etc/hosts; the runtime writes the pod's hosts file")
	warn(spec.NodeName != "" || len(spec.NodeSelector) > 0 || spec.Affinity != nil || len(spec.Tolerations) > 0 ||
		len(spec.TopologySpreadConstraints) > 0 || len(spec.SchedulingGates) > 0,
		"spec.nodeName, nodeSelector, affinity, tolerations, topologySpreadConstraints, schedulingGates: ignored, the pod runs on this host")
	warn(spec.PriorityClassName != "" || spec.Priority != nil || spec.PreemptionPolicy != nil, "spec.priority: ignored, there is no scheduler or eviction")
	warn(len(spec.ReadinessGates) > 0, "spec.readinessGates: ignored, no controller sets them; Ready follows the containers")
	warn(spec.ServiceAccountName != "" && spec.ServiceAccountName != "default",
		"spec.serviceAccountName: no service account token is mounted (no API server)")
	warn(spec.ActiveDeadlineSeconds != nil, "spec.activeDeadlineSeconds: not enforced")
	warn(spec.OS != nil && spec.OS.Name != corev1.Linux, "spec.os: %s pods are run as Linux", osName(spec.OS))
	warn(spec.Overhead != nil, "spec.overhead: ignored (no RuntimeClass)")
	warn(spec.RuntimeClassName != nil, "spec.runtimeClassName: passed to the runtime as its handler name (no RuntimeClass objects)")
	return warnings, errors.Join(errs...)
}

func osName(o *corev1.PodOS) string {
	if o == nil {
		return ""
	}
	return string(o.Name)
}
