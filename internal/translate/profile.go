package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// profile is a resolved seccomp or AppArmor choice.
type profile struct {
	kind runtimeapi.SecurityProfile_ProfileType
	// ref is the Localhost profile (a path for seccomp, a name for
	// AppArmor) and field the CRI field it came from.
	ref   string
	field string
}

// resolveProfile prefers the SecurityProfile message over the deprecated
// string, which older kubelets send alone and newer ones send alongside.
func resolveProfile(sp *runtimeapi.SecurityProfile, spField, legacy, legacyField string, unset runtimeapi.SecurityProfile_ProfileType, legacyDefaults ...string) (profile, error) {
	if sp != nil {
		switch sp.GetProfileType() {
		case runtimeapi.SecurityProfile_RuntimeDefault, runtimeapi.SecurityProfile_Unconfined:
			return profile{kind: sp.GetProfileType()}, nil
		case runtimeapi.SecurityProfile_Localhost:
			field := spField + ".localhost_ref"
			if sp.GetLocalhostRef() == "" {
				return profile{}, invalidf(field, "required with profile_type Localhost")
			}
			return profile{kind: runtimeapi.SecurityProfile_Localhost, ref: sp.GetLocalhostRef(), field: field}, nil
		default:
			return profile{}, invalidf(spField+".profile_type", "unknown profile type %d", int32(sp.GetProfileType()))
		}
	}
	switch {
	case legacy == "":
		return profile{kind: unset}, nil
	case legacy == "runtime/default":
		return profile{kind: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case legacy == "unconfined":
		return profile{kind: runtimeapi.SecurityProfile_Unconfined}, nil
	case strings.HasPrefix(legacy, "localhost/") && len(legacy) > len("localhost/"):
		return profile{kind: runtimeapi.SecurityProfile_Localhost, ref: strings.TrimPrefix(legacy, "localhost/"), field: legacyField}, nil
	}
	for _, d := range legacyDefaults {
		if legacy == d {
			return profile{kind: runtimeapi.SecurityProfile_RuntimeDefault}, nil
		}
	}
	return profile{}, invalidf(legacyField, "unknown profile %q", legacy)
}

// seccomp sets the seccomp profile. Docker's default profile is what CRI
// calls RuntimeDefault, so only the other two need an option.
func (b *builder) seccomp(sc securityContext, readFile func(string) ([]byte, error)) error {
	// The CRI says an unset seccomp profile is unconfined (the kubelet
	// always sends one; crictl and critest rely on the default).
	p, err := resolveProfile(sc.seccomp, securityContextField+".seccomp",
		sc.seccompProfilePath, securityContextField+".seccomp_profile_path",
		runtimeapi.SecurityProfile_Unconfined, "docker/default")
	if err != nil {
		return err
	}
	switch p.kind {
	case runtimeapi.SecurityProfile_Unconfined:
		b.securityOpt("seccomp=unconfined")
	case runtimeapi.SecurityProfile_Localhost:
		data, err := localhostSeccomp(p, readFile)
		if err != nil {
			return err
		}
		b.securityOpt("seccomp=" + data)
	}
	return nil
}

// localhostSeccomp reads a node-local profile. Docker takes the profile's
// content, not a path: the API client may not share dockerd's filesystem.
func localhostSeccomp(p profile, readFile func(string) ([]byte, error)) (string, error) {
	if !path.IsAbs(p.ref) {
		return "", invalidf(p.field, "%q is not an absolute path", p.ref)
	}
	if readFile == nil {
		return "", notImplementedf(p.field, "Localhost seccomp profiles are not supported here")
	}
	data, err := readFile(p.ref)
	if err != nil {
		// Both kinds: the request names a profile the node lacks, and the
		// cause (not exist, permission) stays inspectable.
		return "", fmt.Errorf("%s: read seccomp profile %q: %w: %w", p.field, p.ref, err, errdefs.ErrInvalidArgument)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return "", invalidf(p.field, "seccomp profile %q is not valid JSON: %v", p.ref, err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("{")) {
		return "", invalidf(p.field, "seccomp profile %q is not a JSON object", p.ref)
	}
	return buf.String(), nil
}

// appArmor sets the AppArmor profile. On a host without AppArmor every
// container is unconfined already, so Unconfined needs no option there,
// while a named profile cannot be honoured at all.
func (b *builder) appArmor(sc securityContext) error {
	p, err := resolveProfile(sc.apparmor, securityContextField+".apparmor",
		sc.apparmorProfile, securityContextField+".apparmor_profile", runtimeapi.SecurityProfile_RuntimeDefault)
	if err != nil {
		return err
	}
	switch p.kind {
	case runtimeapi.SecurityProfile_Unconfined:
		if b.host.AppArmor {
			b.securityOpt("apparmor=unconfined")
		}
	case runtimeapi.SecurityProfile_Localhost:
		// The kubelet sends the bare name in localhost_ref; older clients
		// kept the deprecated string's prefix.
		name := strings.TrimPrefix(p.ref, "localhost/")
		if name == "" {
			return invalidf(p.field, "empty AppArmor profile name")
		}
		if !b.host.AppArmor {
			return preconditionf(p.field, "AppArmor is not enabled on this host")
		}
		b.securityOpt("apparmor=" + name)
	}
	return nil
}
