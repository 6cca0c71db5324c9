package translate

import (
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Host is what this machine lets a container have. It is detected once at
// start (package host) and passed in, so translation stays pure.
type Host struct {
	// Capabilities is the host's capability bounding set as "CAP_X" names.
	// Privileged containers and "ALL" get exactly these.
	Capabilities []string
	// AllCapabilities is true when the bounding set holds every capability
	// Docker knows, so Docker's own Privileged flag works as is.
	AllCapabilities bool
	// MinOOMScoreAdj is the lowest oom_score_adj the host accepts
	// (-1000 with CAP_SYS_RESOURCE; otherwise the runtime's own value).
	MinOOMScoreAdj int
	// AppArmor is true when the kernel has AppArmor enabled.
	AppArmor bool
	// SystemdCgroup is true when Docker uses the systemd cgroup driver
	// (docker info's CgroupDriver == "systemd"): Docker then wants a cgroup
	// parent as a slice name, not the path the kubelet sends.
	SystemdCgroup bool
}

// Mount is a host file berth manages for a sandbox (resolv.conf, hosts,
// hostname) and bind-mounts into its containers unless the CRI config already
// mounts something at ContainerPath.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// SandboxParams is the input of Sandbox.
type SandboxParams struct {
	Config *runtimeapi.PodSandboxConfig
	// Image is the pause image reference.
	Image string
	// Labels are the complete Docker labels to set (berth's own included);
	// they are set verbatim.
	Labels map[string]string
	// ReadFile reads a Localhost seccomp profile of the pod's security
	// context. Nil means such profiles are refused.
	ReadFile func(path string) ([]byte, error)
}

// ContainerParams is the input of Container.
type ContainerParams struct {
	Config        *runtimeapi.ContainerConfig
	SandboxConfig *runtimeapi.PodSandboxConfig
	// SandboxID is the Docker ID of the sandbox's pause container: the
	// namespaces of mode POD are joined through it.
	SandboxID string
	// Image is the image to create from (an image ID).
	Image string
	// Labels are the complete Docker labels to set, verbatim.
	Labels map[string]string
	// EtcMounts are the sandbox's managed files.
	EtcMounts []Mount
	// ReadFile reads a Localhost seccomp profile. Nil means such profiles
	// are refused.
	ReadFile func(path string) ([]byte, error)
	// ImageVolume returns the host directory to bind for an image volume
	// (a mount with image set, already checked here): the image's root
	// filesystem at the mount's image_sub_path. field names the mount
	// ("config.mounts[2]") for errors. Nil means image volumes are refused
	// as not implemented.
	ImageVolume func(field string, m *runtimeapi.Mount) (string, error)
	// ImageUser is the image's USER, PrimaryGroup a user's primary gid in
	// the image's /etc/passwd (absent user: 0, as Docker defaults it).
	// SupplementalGroupsPolicy Strict needs PrimaryGroup; nil refuses it.
	ImageUser    string
	PrimaryGroup func(user string) (int64, error)
	// DockerLog is the log driver config of the container's Docker log,
	// the source berth copies the CRI log from; an empty Type keeps the
	// daemon's default.
	DockerLog container.LogConfig
}

// Result is a Docker create config plus what could not be honoured
// exactly; the caller logs the warnings.
type Result struct {
	Config     *container.Config
	HostConfig *container.HostConfig
	Warnings   []string
}
