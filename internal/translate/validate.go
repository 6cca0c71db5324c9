package translate

import (
	"errors"
	"math"
	"path"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxID is the largest uid or gid Linux tools agree on: the kernel takes
// 32 bits, but (uid_t)-1 means "unchanged" and many tools treat ids as
// signed, so Kubernetes itself stops at 2^31-1.
const maxID = math.MaxInt32

func validateSandbox(p SandboxParams) error {
	c := p.Config
	if c == nil {
		return invalidf("config", "required")
	}
	md := c.GetMetadata()
	if md == nil {
		return invalidf("config.metadata", "required")
	}
	for _, f := range []struct{ name, value string }{
		{"config.metadata.name", md.GetName()},
		{"config.metadata.namespace", md.GetNamespace()},
		{"config.metadata.uid", md.GetUid()},
	} {
		if f.value == "" {
			return invalidf(f.name, "required")
		}
	}
	// Not CRI fields: an empty one is a bug in berth, not in the request.
	if p.Image == "" {
		return errors.New("translate sandbox: no pause image")
	}
	return nil
}

func validateContainer(p ContainerParams) error {
	c := p.Config
	if c == nil {
		return invalidf("config", "required")
	}
	if c.GetMetadata() == nil {
		return invalidf("config.metadata", "required")
	}
	if c.GetMetadata().GetName() == "" {
		return invalidf("config.metadata.name", "required")
	}
	if c.GetImage().GetImage() == "" {
		return invalidf("config.image.image", "required")
	}
	if p.Image == "" {
		return errors.New("translate container: no resolved image")
	}
	if p.SandboxID == "" {
		return errors.New("translate container: no sandbox ID")
	}
	return nil
}

// checkID checks a uid or gid.
func checkID(field string, v int64) error {
	if v < 0 || v > maxID {
		return invalidf(field, "%d out of range [0, %d]", v, maxID)
	}
	return nil
}

// checkAbs checks that p is an absolute path without ".." elements, which
// would make what is mounted depend on symlinks the runtime resolves.
func checkAbs(field, p string) error {
	if !path.IsAbs(p) {
		return invalidf(field, "%q is not an absolute path", p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return invalidf(field, "%q contains a \"..\" element", p)
		}
	}
	return nil
}

// checkNamespaceMode rejects enum values this CRI version does not define
// (a newer kubelet's), rather than guessing what they mean.
func checkNamespaceMode(field string, m runtimeapi.NamespaceMode) error {
	if _, ok := runtimeapi.NamespaceMode_name[int32(m)]; !ok {
		return invalidf(field, "unknown namespace mode %d", int32(m))
	}
	return nil
}
