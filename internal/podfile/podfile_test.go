package podfile

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const good = `
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {pw: hunter2}
data: {tok: dG9r}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: app
    image: busybox
`
	f, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if f.Pod.Name != "web" || f.Pod.Spec.Containers[0].Image != "busybox" {
		t.Errorf("pod = %+v", f.Pod)
	}
	if f.Objects.ConfigMaps["cfg"].Data["a"] != "1" {
		t.Errorf("configmap = %+v", f.Objects.ConfigMaps)
	}
	s := f.Objects.Secrets["sec"]
	if string(s.Data["pw"]) != "hunter2" || string(s.Data["tok"]) != "tok" || s.StringData != nil {
		t.Errorf("secret data = %q stringData = %q", s.Data, s.StringData)
	}

	json := `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}]}`
	if f, err := Parse(strings.NewReader(json)); err != nil || f.Pod.Name != "p" {
		t.Errorf("JSON List: %v, %+v", err, f)
	}

	bad := []struct{ name, doc, want string }{
		{"no pod", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no Pod"},
		{"two pods", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n", "second Pod"},
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n    imagee: x\n", `unknown field "imagee"`},
		{"other kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n", `apiVersion "apps/v1"`},
		{"service", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", `kind "Service"`},
		{"no name", "apiVersion: v1\nkind: Pod\nspec: {}\n", "metadata.name is required"},
		{"namespaces differ", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: other}\n", `Secret "s" is in namespace "other"`},
		{"bad yaml", "apiVersion: v1\nkind: Pod\nmetadata: [\n", "document 1"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
