// Package naming encodes CRI identity into Docker names and labels and back.
//
// Docker is berth's only store: a container's name and labels must be enough
// to rebuild its CRI view after a restart. Names follow the dockershim scheme
// (k8s_<container>_<pod>_<namespace>_<uid>_<attempt>) so existing tools that
// parse them keep working.
package naming

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	prefix = "k8s"
	// SandboxContainerName is the container-name field of a sandbox's
	// Docker name, as dockershim spelled it.
	SandboxContainerName = "POD"
	sep                  = "_"
)

// SandboxName is the Docker name of a sandbox's pause container.
func SandboxName(m *runtimeapi.PodSandboxMetadata) string {
	return strings.Join([]string{
		prefix, SandboxContainerName, m.GetName(), m.GetNamespace(), m.GetUid(),
		strconv.FormatUint(uint64(m.GetAttempt()), 10),
	}, sep)
}

// ContainerName is the Docker name of a container of a sandbox.
func ContainerName(c *runtimeapi.ContainerMetadata, s *runtimeapi.PodSandboxMetadata) string {
	return strings.Join([]string{
		prefix, c.GetName(), s.GetName(), s.GetNamespace(), s.GetUid(),
		strconv.FormatUint(uint64(c.GetAttempt()), 10),
	}, sep)
}

// ParsedName is what a Docker name says.
type ParsedName struct {
	Container string
	Pod       string
	Namespace string
	UID       string
	Attempt   uint32
}

var errNotOurs = errors.New("not a berth container name")

// ParseName decodes a Docker name made by SandboxName or ContainerName.
// Docker reports names with a leading "/"; it is accepted.
func ParseName(name string) (ParsedName, error) {
	parts := strings.Split(strings.TrimPrefix(name, "/"), sep)
	if len(parts) != 6 || parts[0] != prefix {
		return ParsedName{}, fmt.Errorf("%q: %w", name, errNotOurs)
	}
	attempt, err := strconv.ParseUint(parts[5], 10, 32)
	if err != nil {
		return ParsedName{}, fmt.Errorf("%q: attempt: %w", name, errNotOurs)
	}
	return ParsedName{
		Container: parts[1], Pod: parts[2], Namespace: parts[3], UID: parts[4],
		Attempt: uint32(attempt),
	}, nil
}
