package images

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dockerHub is the name reference normalization gives Docker Hub; the
// other names below are aliases users write in their docker configs.
const dockerHub = "docker.io"

var dockerHubAliases = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true,
}

// credential is one login from one pull secret, for one registry key.
type credential struct {
	host  string // lower-case host[:port], may hold globs ("*.example.com")
	path  string // path prefix, "" for the whole registry
	login login
}

// login is what a credential gives the runtime.
type login struct {
	username, password, identityToken, registryToken string
}

// keyring holds the credentials of a Pod's pull secrets, most specific
// first, like the kubelet's credentialprovider keyring.
type keyring struct {
	creds []credential
}

// configEntry is one registry's login in a docker config.
type configEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// newKeyring reads the docker configs of the secrets. Secrets that cannot
// hold credentials are returned as warnings; the kubelet skips them
// silently. A config that does not parse is an error naming the secret.
func newKeyring(secrets []corev1.Secret) (*keyring, []string, error) {
	k := &keyring{}
	var warnings []string
	for _, s := range secrets {
		name := s.Namespace + "/" + s.Name
		var entries map[string]configEntry
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			data := s.Data[corev1.DockerConfigJsonKey]
			if len(data) == 0 {
				warnings = append(warnings, fmt.Sprintf("Secret %q of type %s has no %s data; it is not used for pulling", name, s.Type, corev1.DockerConfigJsonKey))
				continue
			}
			var cfg struct {
				Auths map[string]configEntry `json:"auths"`
			}
			if err := json.Unmarshal(data, &cfg); err != nil {
				return nil, nil, fmt.Errorf("image pull secret %q: %s: %w", name, corev1.DockerConfigJsonKey, err)
			}
			entries = cfg.Auths
		case corev1.SecretTypeDockercfg:
			data := s.Data[corev1.DockerConfigKey]
			if len(data) == 0 {
				warnings = append(warnings, fmt.Sprintf("Secret %q of type %s has no %s data; it is not used for pulling", name, s.Type, corev1.DockerConfigKey))
				continue
			}
			if err := json.Unmarshal(data, &entries); err != nil {
				return nil, nil, fmt.Errorf("image pull secret %q: %s: %w", name, corev1.DockerConfigKey, err)
			}
		default:
			warnings = append(warnings, fmt.Sprintf("Secret %q is of type %q, not %s or %s; it is not used for pulling",
				name, s.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg))
			continue
		}
		// Map order is random; sort the keys so the order of equally
		// specific credentials does not change from one pull to the next.
		keys := make([]string, 0, len(entries))
		for key := range entries {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			c, err := newCredential(key, entries[key])
			if err != nil {
				return nil, nil, fmt.Errorf("image pull secret %q: registry %q: %w", name, key, err)
			}
			k.creds = append(k.creds, c)
		}
	}
	// Most specific first: a longer path prefix, then an exact host before
	// a glob; secret order otherwise.
	sort.SliceStable(k.creds, func(i, j int) bool {
		a, b := k.creds[i], k.creds[j]
		if len(a.path) != len(b.path) {
			return len(a.path) > len(b.path)
		}
		return !strings.Contains(a.host, "*") && strings.Contains(b.host, "*")
	})
	return k, warnings, nil
}

// newCredential turns a docker config key (a host, host/path, or a URL as
// old docker clients wrote them: "https://index.docker.io/v1/") and its
// entry into a credential.
func newCredential(key string, e configEntry) (credential, error) {
	raw := key
	if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return credential{}, fmt.Errorf("parse registry key: %w", err)
	}
	if u.Host == "" {
		return credential{}, fmt.Errorf("registry key has no host")
	}
	host := strings.ToLower(u.Host)
	if dockerHubAliases[host] {
		host = dockerHub
	}
	// "/v1/" and "/v2/" are API versions, not repository paths.
	p := u.Path
	if strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") {
		p = p[3:]
	}
	p = strings.Trim(p, "/")

	user, pass := e.Username, e.Password
	if e.Auth != "" {
		if user, pass, err = decodeAuth(e.Auth); err != nil {
			return credential{}, err
		}
	}
	return credential{host: host, path: p, login: login{
		username:      user,
		password:      pass,
		identityToken: e.IdentityToken,
		registryToken: e.RegistryToken,
	}}, nil
}

// decodeAuth decodes a docker config "auth" field: base64(user:password),
// padded or not.
func decodeAuth(field string) (string, string, error) {
	enc := base64.RawStdEncoding
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		enc = base64.StdEncoding
	}
	decoded, err := enc.DecodeString(strings.TrimSpace(field))
	if err != nil {
		return "", "", fmt.Errorf("auth field is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", fmt.Errorf("auth field must be base64(username:password), it has no colon")
	}
	return user, pass, nil
}

// lookup returns the credentials for the image, most specific first, each
// with ServerAddress set to the registry the runtime will contact.
func (k *keyring) lookup(named reference.Named) []*runtimeapi.AuthConfig {
	host := strings.ToLower(reference.Domain(named))
	repo := reference.Path(named)
	var out []*runtimeapi.AuthConfig
	for _, c := range k.creds {
		if !hostMatches(c.host, host) || !pathMatches(c.path, repo) {
			continue
		}
		out = append(out, &runtimeapi.AuthConfig{
			Username:      c.login.username,
			Password:      c.login.password,
			IdentityToken: c.login.identityToken,
			RegistryToken: c.login.registryToken,
			ServerAddress: serverAddress(host),
		})
	}
	return out
}

// serverAddress is the registry URL as containerd compares it with the
// host it contacts (it ignores credentials whose ServerAddress differs);
// Docker Hub's API lives on registry-1.docker.io.
func serverAddress(host string) string {
	if host == dockerHub {
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

// hostMatches reports whether the image's host matches a credential's
// host, which may hold globs per label ("*.example.com"); ports must be
// equal.
func hostMatches(glob, host string) bool {
	globName, globPort := splitPort(glob)
	name, port := splitPort(host)
	if globPort != port {
		return false
	}
	globLabels := strings.Split(globName, ".")
	labels := strings.Split(name, ".")
	if len(globLabels) != len(labels) {
		return false
	}
	for i := range labels {
		if ok, err := path.Match(globLabels[i], labels[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitPort(hostport string) (string, string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, ""
	}
	return host, port
}

// pathMatches reports whether the credential's path prefix covers the
// repository, whole segments only: "team" covers "team/app" but not
// "teammate/app" (the kubelet compares raw strings; we do not hand a
// team's credentials to its neighbour).
func pathMatches(prefix, repo string) bool {
	return prefix == "" || repo == prefix || strings.HasPrefix(repo, prefix+"/")
}
