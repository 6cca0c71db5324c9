package podenv

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "web",
			Namespace:   "prod",
			UID:         "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": "say \"hi\"\n", "a.b/c": "x"},
		},
		Spec: corev1.PodSpec{ServiceAccountName: "robot"},
		Status: corev1.PodStatus{
			PodIP:  "10.0.0.5",
			PodIPs: []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "fd00::5"}},
		},
	}
}

func TestFieldValue(t *testing.T) {
	node := Node{Name: "host1", HostIPs: []string{"192.168.1.2", "fd00::2"}}
	tests := []struct {
		path    string
		pod     func(*corev1.Pod)
		node    *Node
		want    string
		wantErr string
	}{
		{path: "metadata.name", want: "web"},
		{path: "metadata.namespace", want: "prod"},
		{path: "metadata.namespace", pod: func(p *corev1.Pod) { p.Namespace = "" }, want: "default"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "metadata.labels['app']", want: "web"},
		{path: "metadata.labels['missing']", want: ""},
		{path: "metadata.annotations['a.b/c']", want: "x"},
		{path: "metadata.labels", want: "app=\"web\"\ntier=\"front\""},
		{path: "metadata.annotations", want: "a.b/c=\"x\"\nnote=\"say \\\"hi\\\"\\n\""},
		{path: "spec.nodeName", want: "host1"},
		{path: "spec.nodeName", pod: func(p *corev1.Pod) { p.Spec.NodeName = "pinned" }, want: "pinned"},
		{path: "spec.serviceAccountName", want: "robot"},
		{path: "spec.serviceAccountName", pod: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "" }, want: "default"},
		{path: "status.hostIP", want: "192.168.1.2"},
		{path: "status.hostIPs", want: "192.168.1.2,fd00::2"},
		{path: "status.hostIP", node: &Node{}, pod: func(p *corev1.Pod) { p.Status.HostIP = "1.2.3.4" }, want: "1.2.3.4"},
		{path: "status.hostIP", node: &Node{}, want: ""},
		{path: "status.podIP", want: "10.0.0.5"},
		{path: "status.podIPs", want: "10.0.0.5,fd00::5"},
		{path: "status.podIPs", pod: func(p *corev1.Pod) { p.Status.PodIPs = nil }, want: "10.0.0.5"},
		{path: "status.podIP", pod: func(p *corev1.Pod) { p.Status = corev1.PodStatus{} }, want: ""},
		{path: "spec.hostname", wantErr: `fieldPath "spec.hostname": unsupported field`},
		{path: "metadata.generateName['x']", wantErr: "unsupported subscripted field"},
		{path: "metadata.labels['bad key!']", wantErr: "invalid key subscript"},
		{path: "metadata.labels['x'", wantErr: "unsupported field"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			pod := testPod()
			if tt.pod != nil {
				tt.pod(pod)
			}
			n := node
			if tt.node != nil {
				n = *tt.node
			}
			got, err := FieldValue(pod, n, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
