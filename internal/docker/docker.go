// Package docker is berth's narrow view of the Docker Engine API.
//
// The interfaces list only the calls berth makes, so a test fake
// (package dockertest) stays small and the real *client.Client satisfies them
// as is: no adapter layer to keep in step with the client library.
package docker

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// Containers is the container part of the Engine API berth uses.
type Containers interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, containerID string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerUpdate(ctx context.Context, containerID string, options client.ContainerUpdateOptions) (client.ContainerUpdateResult, error)
}

// Images is the image part of the Engine API berth uses.
type Images interface {
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
	ImageInspect(ctx context.Context, imageID string, inspectOpts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImagePull(ctx context.Context, refStr string, options client.ImagePullOptions) (client.ImagePullResponse, error)
	ImageRemove(ctx context.Context, imageID string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

// System is the daemon-wide part of the Engine API berth uses.
type System interface {
	Ping(ctx context.Context, options client.PingOptions) (client.PingResult, error)
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// API is everything berth asks of Docker.
type API interface {
	Containers
	Images
	System
}

var _ API = (*client.Client)(nil)

// MinAPIVersion is the oldest Engine API berth works with: Docker 20.10,
// which Debian ships.
const MinAPIVersion = "1.41"

// New returns a client for host ("unix:///var/run/docker.sock", "tcp://...")
// that negotiates the API version with the daemon on first use, so one berth
// binary works with 20.10 and with current engines.
func New(host string) (*client.Client, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	} else {
		opts = append(opts, client.WithHostFromEnv())
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	return c, nil
}
