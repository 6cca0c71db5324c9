package manager

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podStatus is what the runtime reports about the pod: every sandbox and
// container it made for the pod's UID.
type podStatus struct {
	// Sandboxes, newest first.
	Sandboxes []*runtimeapi.PodSandboxStatus
	// Containers, every attempt of every container, newest first.
	Containers []*containerStatus
}

// containerStatus is one attempt of one container, as the runtime reports
// it.
type containerStatus struct {
	ID        string
	Name      string
	Attempt   uint32
	State     runtimeapi.ContainerState
	CreatedAt time.Time
	StartedAt time.Time
	// FinishedAt is zero while the container runs.
	FinishedAt time.Time
	ExitCode   int32
	Reason     string
	Message    string
	Image      string
	ImageRef   string
	// Hash is the hash of the container spec it was created from
	// (containerHash); a changed spec restarts the container.
	Hash string
	// annotations are the container's CRI annotations (restart count,
	// termination message path and policy).
	annotations map[string]string
}

// find returns the newest attempt of the named container, or nil.
func (s *podStatus) find(name string) *containerStatus {
	for _, c := range s.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// containerToKill is a running container the plan stops, and why.
type containerToKill struct {
	Name    string
	Reason  string // event reason: "Killing"
	Message string // e.g. "Container app failed liveness probe, will be restarted"
}

// podActions is the plan of one sync, computed before anything is done.
type podActions struct {
	// KillPod stops every container and the sandbox first.
	KillPod bool
	// CreateSandbox makes a new sandbox with Attempt.
	CreateSandbox bool
	// SandboxID is the sandbox the containers run in when none is created.
	SandboxID string
	Attempt   uint32
	// InitContainersToStart are indexes into pod.Spec.InitContainers, in
	// order: at most one regular init container, after any restartable
	// (sidecar) init containers before it that need a start.
	InitContainersToStart []int
	// ContainersToStart are indexes into pod.Spec.Containers.
	ContainersToStart []int
	// ContainersToKill maps container ID to what and why.
	ContainersToKill map[string]containerToKill
}

// probeResults are the latest outcomes of the liveness and startup
// probes, by container ID: true when the probe says restart.
type probeResults struct {
	LivenessFailed map[string]bool
	StartupFailed  map[string]bool
	// Started: the startup probe succeeded (or there is none) for these
	// container IDs; sidecars gate the next init container on it.
	Started map[string]bool
}
