package naming

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNames(t *testing.T) {
	sm := &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "prod", Uid: "u-1", Attempt: 2}
	cm := &runtimeapi.ContainerMetadata{Name: "nginx", Attempt: 7}
	tests := []struct {
		name string
		got  string
		want ParsedName
		str  string
	}{
		{"sandbox", SandboxName(sm), ParsedName{Container: "POD", Pod: "web", Namespace: "prod", UID: "u-1", Attempt: 2}, "k8s_POD_web_prod_u-1_2"},
		{"container", ContainerName(cm, sm), ParsedName{Container: "nginx", Pod: "web", Namespace: "prod", UID: "u-1", Attempt: 7}, "k8s_nginx_web_prod_u-1_7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.str {
				t.Errorf("name = %q, want %q", tt.got, tt.str)
			}
			p, err := ParseName("/" + tt.got)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, p); d != "" {
				t.Errorf("ParseName (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseNameRejects(t *testing.T) {
	for _, n := range []string{"", "nginx", "k8s_a_b_c_d", "k8s_a_b_c_d_x", "k9s_a_b_c_d_1", "k8s_a_b_c_d_1_extra"} {
		if _, err := ParseName(n); err == nil {
			t.Errorf("ParseName(%q) succeeded", n)
		}
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	sc := &runtimeapi.PodSandboxConfig{
		Metadata:    &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "prod", Uid: "u-1", Attempt: 1},
		Labels:      map[string]string{"app": "web", "io.berth.type": "spoof"},
		Annotations: map[string]string{"note": "a=b,c", "empty": ""},
	}
	l, err := SandboxLabels(sc, 42)
	if err != nil {
		t.Fatal(err)
	}
	// An image LABEL that collides with a CRI label key must not leak into
	// the CRI view: Docker merges image labels under container labels.
	l["app"] = "from-image"
	d, err := Decode(l)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != TypeSandbox || d.CreatedAt != 42 {
		t.Errorf("type/created = %q/%d", d.Type, d.CreatedAt)
	}
	if diff := cmp.Diff(sc.Labels, d.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sc.Annotations, d.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	m, err := d.SandboxMetadata()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetName() != "web" || m.GetAttempt() != 1 {
		t.Errorf("metadata = %v", m)
	}

	cc := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c", Attempt: 3},
		Image:    &runtimeapi.ImageSpec{Image: "busybox:1"},
	}
	l, err = ContainerLabels("sb", cc, sc, "/var/log/pods/x/c/0.log", 7)
	if err != nil {
		t.Fatal(err)
	}
	d, err = Decode(l)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := d.ContainerMetadata()
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != TypeContainer || d.SandboxID != "sb" || d.Image != "busybox:1" || d.LogPath != "/var/log/pods/x/c/0.log" || cm.GetAttempt() != 3 {
		t.Errorf("decoded = %+v, metadata %v", d, cm)
	}
	if len(d.Labels) != 0 || d.Labels == nil {
		t.Errorf("labels = %#v, want empty non-nil", d.Labels)
	}
}

func TestDecodeRejectsForeign(t *testing.T) {
	if _, err := Decode(map[string]string{"app": "x"}); err == nil {
		t.Error("Decode of foreign labels succeeded")
	}
	if _, err := Decode(map[string]string{LabelManaged: "true", LabelLabels: "{"}); err == nil {
		t.Error("Decode of corrupt labels succeeded")
	}
}
