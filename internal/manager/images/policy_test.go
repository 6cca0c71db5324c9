package images

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseImageAndDefaultPolicy(t *testing.T) {
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	tests := []struct {
		image      string
		wantSpec   string
		wantPolicy corev1.PullPolicy
	}{
		{image: "busybox", wantSpec: "busybox:latest", wantPolicy: corev1.PullAlways},
		{image: "busybox:latest", wantSpec: "busybox:latest", wantPolicy: corev1.PullAlways},
		{image: "busybox:1.36", wantSpec: "busybox:1.36", wantPolicy: corev1.PullIfNotPresent},
		{image: "library/busybox", wantSpec: "library/busybox:latest", wantPolicy: corev1.PullAlways},
		{image: "docker.io/library/busybox:1.36", wantSpec: "docker.io/library/busybox:1.36", wantPolicy: corev1.PullIfNotPresent},
		{image: "busybox@" + digest, wantSpec: "busybox@" + digest, wantPolicy: corev1.PullIfNotPresent},
		{image: "busybox:1.36@" + digest, wantSpec: "busybox:1.36@" + digest, wantPolicy: corev1.PullIfNotPresent},
		// The API server looks at the tag only: latest wins over a digest.
		{image: "busybox:latest@" + digest, wantSpec: "busybox:latest@" + digest, wantPolicy: corev1.PullAlways},
		// A port is not a tag.
		{image: "localhost:5000/app", wantSpec: "localhost:5000/app:latest", wantPolicy: corev1.PullAlways},
		{image: "registry.example.com:5000/team/app:v1", wantSpec: "registry.example.com:5000/team/app:v1", wantPolicy: corev1.PullIfNotPresent},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			img, err := parseImage(tt.image)
			if err != nil {
				t.Fatalf("parseImage: %v", err)
			}
			if img.spec != tt.wantSpec {
				t.Errorf("spec = %q, want %q", img.spec, tt.wantSpec)
			}
			got, err := pullPolicy(&corev1.Container{Name: "c", Image: tt.image}, img)
			if err != nil {
				t.Fatalf("pullPolicy: %v", err)
			}
			if got != tt.wantPolicy {
				t.Errorf("policy = %q, want %q", got, tt.wantPolicy)
			}
		})
	}
}

func TestExplicitPolicyWins(t *testing.T) {
	img, err := parseImage("busybox")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever} {
		t.Run(string(p), func(t *testing.T) {
			got, err := pullPolicy(&corev1.Container{Name: "c", ImagePullPolicy: p}, img)
			if err != nil || got != p {
				t.Errorf("pullPolicy = %q, %v; want %q", got, err, p)
			}
		})
	}
}

func TestInvalidPolicy(t *testing.T) {
	img, _ := parseImage("busybox")
	_, err := pullPolicy(&corev1.Container{Name: "app", ImagePullPolicy: "Sometimes"}, img)
	if err == nil || !strings.Contains(err.Error(), `container "app": imagePullPolicy: unsupported value "Sometimes"`) {
		t.Errorf("err = %v, want it to name the field and value", err)
	}
}

func TestInvalidImageNames(t *testing.T) {
	for _, image := range []string{"", "Busybox", "busy box", "busybox:", "1111111111111111111111111111111111111111111111111111111111111111"} {
		t.Run(image, func(t *testing.T) {
			if _, err := parseImage(image); err == nil {
				t.Errorf("parseImage(%q) succeeded, want an error", image)
			}
		})
	}
}
