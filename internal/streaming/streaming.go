// Package streaming is berth's exec, attach and port-forward over Docker.
//
// Server serves the CRI streaming URLs with k8s.io/cri-streaming: the
// kubelet asks the CRI for a URL (GetExec, GetAttach, GetPortForward), the
// server hands out a single-use token and serves the SPDY or WebSocket
// session on it. The sessions run on Docker: exec through the exec API,
// attach through the attach API, port-forward by dialling inside the pod's
// network namespace from within berth. ExecSync is the unary exec the CRI
// ExecSync RPC uses.
package streaming

import (
	"context"

	"github.com/moby/moby/client"
)

// Docker is the part of the Engine API the streaming runtime uses.
type Docker interface {
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerAttach(ctx context.Context, containerID string, options client.ContainerAttachOptions) (client.ContainerAttachResult, error)
	ContainerResize(ctx context.Context, containerID string, options client.ContainerResizeOptions) (client.ContainerResizeResult, error)
	ExecCreate(ctx context.Context, containerID string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
	ExecResize(ctx context.Context, execID string, options client.ExecResizeOptions) (client.ExecResizeResult, error)
}

var _ Docker = (*client.Client)(nil)

// SandboxResolver returns the pid of a pod sandbox's pause container and
// whether the pod uses the host network. Port-forward dials inside
// /proc/<pid>/ns/net unless hostNetwork is true.
type SandboxResolver func(ctx context.Context, sandboxID string) (pid int, hostNetwork bool, err error)
