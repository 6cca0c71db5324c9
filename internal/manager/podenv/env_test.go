package podenv

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func testObjects() Objects {
	return Objects{
		ConfigMaps: map[string]*corev1.ConfigMap{
			"cfg": {
				ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
				Data:       map[string]string{"B": "from-cm-b", "A": "from-cm-a", "bad=key": "x"},
				BinaryData: map[string][]byte{"BIN": []byte("not in env")},
			},
		},
		Secrets: map[string]*corev1.Secret{
			"sec": {
				ObjectMeta: metav1.ObjectMeta{Name: "sec"},
				Data:       map[string][]byte{"USER": []byte("root"), "PASS": []byte("old")},
				StringData: map[string]string{"PASS": "new"},
			},
		},
	}
}

func cmRef(name string, optional *bool) *corev1.ConfigMapEnvSource {
	return &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: optional}
}

func secRef(name string, optional *bool) *corev1.SecretEnvSource {
	return &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: optional}
}

func cmKey(name, key string, optional *bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}
}

func secKey(name, key string, optional *bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}
}

func TestEnv(t *testing.T) {
	node := Node{Name: "host1", Allocatable: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	tests := []struct {
		name         string
		c            corev1.Container
		want         []Var
		wantWarnings []string
		wantErr      string
		notFound     bool
	}{
		{
			name: "env in order with expansion against earlier vars only",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "X", Value: "x"},
				{Name: "Y", Value: "$(X)-$(Z)"},
				{Name: "Z", Value: "z"},
				{Name: "E", Value: "$$(X)"},
				{Name: "EMPTY"},
			}},
			want: []Var{{"X", "x"}, {"Y", "x-$(Z)"}, {"Z", "z"}, {"E", "$(X)"}, {"EMPTY", ""}},
		},
		{
			name: "envFrom first, sorted keys, env overrides in place",
			c: corev1.Container{
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("cfg", nil)}},
				Env: []corev1.EnvVar{
					{Name: "C", Value: "$(A)+$(B)"},
					{Name: "A", Value: "override"},
					{Name: "A", Value: "again:$(A)"},
				},
			},
			want:         []Var{{"A", "again:override"}, {"B", "from-cm-b"}, {"C", "from-cm-a+from-cm-b"}},
			wantWarnings: []string{`envFrom[0]: configMap "cfg": skipped key "bad=key"`},
		},
		{
			name: "envFrom prefix and secret stringData over data",
			c: corev1.Container{EnvFrom: []corev1.EnvFromSource{
				{Prefix: "DB_", SecretRef: secRef("sec", nil)},
			}},
			want: []Var{{"DB_PASS", "new"}, {"DB_USER", "root"}},
		},
		{
			name: "later envFrom overrides earlier",
			c: corev1.Container{EnvFrom: []corev1.EnvFromSource{
				{Prefix: "P", SecretRef: secRef("sec", nil)},
				{Prefix: "PU", SecretRef: secRef("sec", nil)},
				{SecretRef: secRef("sec", nil)},
				{Prefix: "", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
			}},
			want: []Var{{"PPASS", "new"}, {"PUSER", "root"}, {"PUPASS", "new"}, {"PUUSER", "root"}, {"PASS", "new"}, {"USER", "root"}},
		},
		{
			name:    "envFrom missing configMap",
			c:       corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("gone", nil)}}},
			wantErr: `envFrom[0]: configMap "gone": not found`, notFound: true,
		},
		{
			name:    "envFrom missing secret, optional false",
			c:       corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: secRef("gone", ptr(false))}}},
			wantErr: `envFrom[0]: secret "gone": not found`, notFound: true,
		},
		{
			name: "valueFrom sources",
			c: corev1.Container{Name: "app", Env: []corev1.EnvVar{
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
				{Name: "CM", ValueFrom: cmKey("cfg", "A", nil)},
				{Name: "SEC", ValueFrom: secKey("sec", "PASS", nil)},
				{Name: "NOEXPAND", ValueFrom: cmKey("cfg", "A", nil)},
				{Name: "REF", Value: "$(POD)@$(NODE)"},
			}},
			want: []Var{{"POD", "web"}, {"NODE", "host1"}, {"MEM", "1024"}, {"CM", "from-cm-a"},
				{"SEC", "new"}, {"NOEXPAND", "from-cm-a"}, {"REF", "web@host1"}},
		},
		{
			name: "optional missing sources leave the variable out",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: cmKey("gone", "k", ptr(true))},
				{Name: "B", ValueFrom: cmKey("cfg", "nokey", ptr(true))},
				{Name: "C", ValueFrom: secKey("gone", "k", ptr(true))},
				{Name: "D", ValueFrom: secKey("sec", "nokey", ptr(true))},
				{Name: "E", Value: "[$(A)]"},
			}},
			want: []Var{{"E", "[$(A)]"}},
		},
		{
			name:    "missing configMap key",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("cfg", "k", nil)}}},
			wantErr: `env "A": configMap "cfg" key "k": not found`, notFound: true,
		},
		{
			name:    "binaryData is not a configMapKeyRef source",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("cfg", "BIN", nil)}}},
			wantErr: `env "A": configMap "cfg" key "BIN": not found`, notFound: true,
		},
		{
			name:    "missing secret",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "S", ValueFrom: secKey("nosec", "k", ptr(false))}}},
			wantErr: `env "S": secret "nosec": not found`, notFound: true,
		},
		{
			name:    "missing secret key",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "S", ValueFrom: secKey("sec", "k", nil)}}},
			wantErr: `env "S": secret "sec" key "k": not found`, notFound: true,
		},
		{
			name: "bad fieldRef",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "F", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.bogus"}}}}},
			wantErr: `env "F": fieldPath "spec.bogus": unsupported field`,
		},
		{
			name: "whole labels map not allowed in env",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "F", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}},
			wantErr: `only supported in downwardAPI volumes`,
		},
		{
			name: "fileKeyRef unsupported",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "F", ValueFrom: &corev1.EnvVarSource{
				FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "p", Key: "k"}}}}},
			wantErr: `env "F": valueFrom.fileKeyRef is not supported by berth run`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod()
			c := tt.c
			pod.Spec.Containers = []corev1.Container{c}
			got, warnings, err := Env(pod, &c, testObjects(), node)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if tt.notFound != errors.Is(err, ErrNotFound) {
					t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tt.notFound, tt.notFound)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("vars (-want +got):\n%s", diff)
			}
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings = %q, want %d matching %q", warnings, len(tt.wantWarnings), tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.HasPrefix(warnings[i], w) {
					t.Errorf("warning[%d] = %q, want prefix %q", i, warnings[i], w)
				}
			}
		})
	}
}
