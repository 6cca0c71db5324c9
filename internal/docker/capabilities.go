package docker

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// probeImage names an image that cannot exist (.invalid is reserved).
const probeImage = "berth.invalid/capability-probe:none"

var unknownCap = regexp.MustCompile(`unknown capability: "?(CAP_[A-Z_]+)"?`)

// GrantableCapabilities returns those of caps that the daemon can grant.
// The kernel may know capabilities the daemon does not (Engine 20.10 stops
// at CAP_AUDIT_READ), and a create naming one fails. Docker checks
// capabilities before it looks the image up, so a create from an image
// that cannot exist either names an unknown capability, which is dropped
// before trying again, or fails on the image, which means every remaining
// capability is accepted. No container is made.
func GrantableCapabilities(ctx context.Context, c Containers, caps []string) ([]string, error) {
	left := slices.Clone(caps)
	for range len(caps) + 1 {
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: probeImage},
			HostConfig: &container.HostConfig{CapAdd: left},
		})
		if err == nil {
			// Someone has an image of that name after all.
			c.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
			return left, nil
		}
		m := unknownCap.FindStringSubmatch(err.Error())
		if m == nil {
			if errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) {
				return left, nil
			}
			return nil, fmt.Errorf("probe capabilities: %w", err)
		}
		i := slices.Index(left, m[1])
		if i < 0 {
			return nil, fmt.Errorf("probe capabilities: daemon refuses %s, which was not asked for", m[1])
		}
		left = slices.Delete(left, i, i+1)
	}
	return nil, fmt.Errorf("probe capabilities: no answer settled")
}
