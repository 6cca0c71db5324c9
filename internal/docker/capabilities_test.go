package docker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/berth-project/berth/internal/docker"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// refuser answers creates as Docker 20.10 does: an unknown capability is
// refused before the image is looked up.
type refuser struct {
	docker.Containers
	unknown []string
	calls   int
}

func (r *refuser) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	r.calls++
	for _, c := range o.HostConfig.CapAdd {
		if slices.Contains(r.unknown, c) {
			return client.ContainerCreateResult{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid CapAdd: unknown capability: %q", c))
		}
	}
	return client.ContainerCreateResult{}, errdefs.ErrNotFound.WithMessage("No such image: " + o.Config.Image)
}

func TestGrantableCapabilities(t *testing.T) {
	r := &refuser{unknown: []string{"CAP_BPF", "CAP_PERFMON"}}
	got, err := docker.GrantableCapabilities(context.Background(), r, []string{"CAP_CHOWN", "CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CAP_CHOWN", "CAP_NET_ADMIN"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if r.calls != 3 {
		t.Errorf("%d creates, want 3", r.calls)
	}
}
