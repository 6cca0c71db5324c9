package images

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cred is an AuthConfig in a comparable form.
type cred struct {
	User, Pass, Server, IdentityToken, RegistryToken string
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func jsonSecret(name, config string) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(config)},
	}
}

func cfgSecret(name, config string) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Type:       corev1.SecretTypeDockercfg,
		Data:       map[string][]byte{corev1.DockerConfigKey: []byte(config)},
	}
}

// auths builds a .dockerconfigjson with user "u-<key>" / password "p" per key.
func auths(keys ...string) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, `"`+k+`":{"username":"u-`+k+`","password":"p"}`)
	}
	return `{"auths":{` + strings.Join(parts, ",") + `}}`
}

func lookup(t *testing.T, secrets []corev1.Secret, image string) []cred {
	t.Helper()
	ring, _, err := newKeyring(secrets)
	if err != nil {
		t.Fatalf("newKeyring: %v", err)
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		t.Fatal(err)
	}
	var out []cred
	for _, a := range ring.lookup(named) {
		out = append(out, cred{a.Username, a.Password, a.ServerAddress, a.IdentityToken, a.RegistryToken})
	}
	return out
}

func TestKeyringLookup(t *testing.T) {
	const hub = "https://registry-1.docker.io"
	u := func(key, server string) cred { return cred{User: "u-" + key, Pass: "p", Server: server} }
	tests := []struct {
		name    string
		secrets []corev1.Secret
		image   string
		want    []cred
	}{
		{name: "docker.io key, short name", secrets: []corev1.Secret{jsonSecret("s", auths("docker.io"))},
			image: "busybox", want: []cred{u("docker.io", hub)}},
		{name: "legacy index URL, qualified name", secrets: []corev1.Secret{jsonSecret("s", auths("https://index.docker.io/v1/"))},
			image: "docker.io/library/busybox:1.36", want: []cred{u("https://index.docker.io/v1/", hub)}},
		{name: "index.docker.io, user repo", secrets: []corev1.Secret{jsonSecret("s", auths("index.docker.io"))},
			image: "someone/app", want: []cred{u("index.docker.io", hub)}},
		{name: "registry-1 alias", secrets: []corev1.Secret{jsonSecret("s", auths("registry-1.docker.io"))},
			image: "busybox", want: []cred{u("registry-1.docker.io", hub)}},
		{name: "docker hub creds not for quay", secrets: []corev1.Secret{jsonSecret("s", auths("docker.io"))},
			image: "quay.io/team/app", want: nil},
		{name: "host:port", secrets: []corev1.Secret{jsonSecret("s", auths("registry.example.com:5000"))},
			image: "registry.example.com:5000/app:v1", want: []cred{u("registry.example.com:5000", "https://registry.example.com:5000")}},
		{name: "port must match", secrets: []corev1.Secret{jsonSecret("s", auths("registry.example.com:5000"))},
			image: "registry.example.com/app:v1", want: nil},
		{name: "no port in key does not cover a port", secrets: []corev1.Secret{jsonSecret("s", auths("registry.example.com"))},
			image: "registry.example.com:5000/app", want: nil},
		{name: "scheme and v2 path ignored", secrets: []corev1.Secret{jsonSecret("s", auths("http://registry.example.com/v2/"))},
			image: "registry.example.com/app", want: []cred{u("http://registry.example.com/v2/", "https://registry.example.com")}},
		{name: "path prefix, most specific first", secrets: []corev1.Secret{jsonSecret("s", auths("quay.io", "quay.io/team", "quay.io/team/app"))},
			image: "quay.io/team/app:v1", want: []cred{
				u("quay.io/team/app", "https://quay.io"), u("quay.io/team", "https://quay.io"), u("quay.io", "https://quay.io")}},
		{name: "path prefix on whole segments", secrets: []corev1.Secret{jsonSecret("s", auths("quay.io", "quay.io/team"))},
			image: "quay.io/teammate/app", want: []cred{u("quay.io", "https://quay.io")}},
		{name: "other path does not match", secrets: []corev1.Secret{jsonSecret("s", auths("quay.io/other"))},
			image: "quay.io/team/app", want: nil},
		{name: "docker hub path prefix", secrets: []corev1.Secret{jsonSecret("s", auths("docker.io", "docker.io/someone"))},
			image: "someone/app", want: []cred{u("docker.io/someone", hub), u("docker.io", hub)}},
		{name: "most specific first across secrets", secrets: []corev1.Secret{
			jsonSecret("a", auths("quay.io")), jsonSecret("b", auths("quay.io/team/app"))},
			image: "quay.io/team/app", want: []cred{u("quay.io/team/app", "https://quay.io"), u("quay.io", "https://quay.io")}},
		{name: "equal keys keep secret order", secrets: []corev1.Secret{
			jsonSecret("a", `{"auths":{"quay.io":{"username":"first","password":"1"}}}`),
			jsonSecret("b", `{"auths":{"quay.io":{"username":"second","password":"2"}}}`)},
			image: "quay.io/x", want: []cred{{User: "first", Pass: "1", Server: "https://quay.io"}, {User: "second", Pass: "2", Server: "https://quay.io"}}},
		{name: "glob host, exact first", secrets: []corev1.Secret{jsonSecret("s", auths("*.example.com", "reg.example.com"))},
			image: "reg.example.com/app", want: []cred{u("reg.example.com", "https://reg.example.com"), u("*.example.com", "https://reg.example.com")}},
		{name: "glob matches one label only", secrets: []corev1.Secret{jsonSecret("s", auths("*.example.com"))},
			image: "a.b.example.com/app", want: nil},
		{name: "dockercfg legacy format", secrets: []corev1.Secret{cfgSecret("s", `{"quay.io":{"auth":"`+b64("legacy:pw")+`","email":"x@y"}}`)},
			image: "quay.io/app", want: []cred{{User: "legacy", Pass: "pw", Server: "https://quay.io"}}},
		{name: "username and password fields", secrets: []corev1.Secret{jsonSecret("s", `{"auths":{"quay.io":{"username":"bob","password":"pw"}}}`)},
			image: "quay.io/app", want: []cred{{User: "bob", Pass: "pw", Server: "https://quay.io"}}},
		{name: "auth wins over username", secrets: []corev1.Secret{jsonSecret("s", `{"auths":{"quay.io":{"username":"bob","password":"pw","auth":"`+b64("alice:x")+`"}}}`)},
			image: "quay.io/app", want: []cred{{User: "alice", Pass: "x", Server: "https://quay.io"}}},
		{name: "unpadded auth, colon in password", secrets: []corev1.Secret{jsonSecret("s", `{"auths":{"quay.io":{"auth":"`+base64.RawStdEncoding.EncodeToString([]byte("bob:a:b"))+`"}}}`)},
			image: "quay.io/app", want: []cred{{User: "bob", Pass: "a:b", Server: "https://quay.io"}}},
		{name: "tokens", secrets: []corev1.Secret{jsonSecret("s", `{"auths":{"quay.io":{"identitytoken":"id","registrytoken":"reg"}}}`)},
			image: "quay.io/app", want: []cred{{Server: "https://quay.io", IdentityToken: "id", RegistryToken: "reg"}}},
		{name: "other secret types ignored", secrets: []corev1.Secret{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "opaque"},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(auths("quay.io"))},
		}}, image: "quay.io/app", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lookup(t, tt.secrets, tt.image)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lookup(%q) mismatch (-want +got):\n%s", tt.image, diff)
			}
		})
	}
}

func TestKeyringWarnings(t *testing.T) {
	_, warnings, err := newKeyring([]corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "opaque"}, Type: corev1.SecretTypeOpaque},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "empty"}, Type: corev1.SecretTypeDockerConfigJson},
		jsonSecret("fine", auths("quay.io")),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Secret "ns/opaque" is of type "Opaque", not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg; it is not used for pulling`,
		`Secret "ns/empty" of type kubernetes.io/dockerconfigjson has no .dockerconfigjson data; it is not used for pulling`,
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestKeyringErrors(t *testing.T) {
	tests := []struct {
		name   string
		secret corev1.Secret
		want   []string // substrings of the error
	}{
		{name: "bad base64", secret: jsonSecret("bad", `{"auths":{"quay.io":{"auth":"%%%"}}}`),
			want: []string{`image pull secret "default/bad"`, `registry "quay.io"`, "base64"}},
		{name: "no colon", secret: jsonSecret("nocolon", `{"auths":{"quay.io":{"auth":"`+b64("justuser")+`"}}}`),
			want: []string{`"default/nocolon"`, "username:password"}},
		{name: "bad json", secret: jsonSecret("json", `{"auths":`),
			want: []string{`image pull secret "default/json": .dockerconfigjson`}},
		{name: "bad dockercfg", secret: cfgSecret("cfg", `[]`),
			want: []string{`image pull secret "default/cfg": .dockercfg`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newKeyring([]corev1.Secret{tt.secret})
			if err == nil {
				t.Fatal("newKeyring succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
