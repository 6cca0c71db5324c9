package manager

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestContainerHash(t *testing.T) {
	base := corev1.Container{Name: "app", Image: "nginx:1", Env: []corev1.EnvVar{{Name: "A", Value: "1"}},
		Resources: corev1.ResourceRequirements{Limits: rl("cpu", "100m")}}
	h := containerHash(&base)
	if h == "" || h != containerHash(base.DeepCopy()) {
		t.Fatalf("hash not stable: %q vs %q", h, containerHash(base.DeepCopy()))
	}
	// The same quantity written differently is the same spec.
	same := base.DeepCopy()
	same.Resources.Limits = rl("cpu", "0.1")
	if containerHash(same) != h {
		t.Error("0.1 and 100m CPU hash differently")
	}
	for name, mutate := range map[string]func(*corev1.Container){
		"image":     func(c *corev1.Container) { c.Image = "nginx:2" },
		"env":       func(c *corev1.Container) { c.Env[0].Value = "2" },
		"resources": func(c *corev1.Container) { c.Resources.Limits = rl("cpu", "200m") },
		"command":   func(c *corev1.Container) { c.Command = []string{"x"} },
	} {
		c := base.DeepCopy()
		mutate(c)
		if containerHash(c) == h {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestAnnotationsReadBack(t *testing.T) {
	pod := cfgPod()
	c := &pod.Spec.Containers[0]
	ann := containerAnnotations(pod, c, 7)
	if got := containerHashFrom(ann); got != containerHash(c) {
		t.Errorf("containerHashFrom = %q, want %q", got, containerHash(c))
	}
	if n, err := restartCountFrom(ann); err != nil || n != 7 {
		t.Errorf("restartCountFrom = %d, %v; want 7", n, err)
	}
	if got := ann[annotationPodTerminationGracePeriod]; got != "30" {
		t.Errorf("default grace period annotation = %q, want 30", got)
	}
	for _, bad := range []map[string]string{nil, {annotationRestartCount: "x"}, {annotationRestartCount: "-1"}} {
		if _, err := restartCountFrom(bad); err == nil {
			t.Errorf("restartCountFrom(%v): no error", bad)
		}
	}
	if got := containerHashFrom(nil); got != "" {
		t.Errorf("containerHashFrom(nil) = %q", got)
	}
}
