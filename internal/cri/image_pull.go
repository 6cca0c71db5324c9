package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PullImage pulls an image and returns its ID, the same value ListImages
// reports as Image.id and ContainerStatus as image_id.
func (s *Service) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: empty: %w", errdefs.ErrInvalidArgument)
	}
	auth, err := encodeAuth(req.GetAuth())
	if err != nil {
		return nil, err
	}
	// Concurrent pulls of one image with the same credentials share one
	// Docker pull.
	err = s.pulls.do(ctx, ref+"\x00"+auth, func(ctx context.Context) error { return s.pull(ctx, ref, auth) })
	if err != nil {
		return nil, err
	}
	res, err := s.docker.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("inspect pulled image %q: %w", ref, err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: res.ID}, nil
}

func (s *Service) pull(ctx context.Context, ref, auth string) error {
	resp, err := s.docker.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return pullError(ref, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return pullError(ref, err)
	}
	return nil
}

// pullError keeps the kubelet's reason first in the message: the kubelet
// matches on the prefix.
func pullError(ref string, err error) error {
	msg := err.Error()
	for _, unreachable := range []string{"connection refused", "no such host", "i/o timeout", "dial tcp", "TLS handshake", "server gave HTTP response to HTTPS client"} {
		if strings.Contains(msg, unreachable) {
			return fmt.Errorf("RegistryUnavailable: pull image %q: %w", ref, err)
		}
	}
	return fmt.Errorf("pull image %q: %w", ref, err)
}

// encodeAuth turns CRI credentials into Docker's X-Registry-Auth value.
// Docker's daemon reads username and password, not the combined "auth"
// field, so that is split here.
func encodeAuth(a *runtimeapi.AuthConfig) (string, error) {
	if a == nil {
		return "", nil
	}
	ac := registry.AuthConfig{
		Username: a.GetUsername(), Password: a.GetPassword(), ServerAddress: a.GetServerAddress(),
		IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken(),
	}
	if a.GetAuth() != "" && ac.Username == "" {
		raw, err := base64.StdEncoding.DecodeString(a.GetAuth())
		if err != nil {
			return "", fmt.Errorf("auth.auth: not base64: %w", errdefs.ErrInvalidArgument)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", fmt.Errorf("auth.auth: not user:password: %w", errdefs.ErrInvalidArgument)
		}
		ac.Username, ac.Password = user, pass
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return "", fmt.Errorf("encode auth: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// pullGroup runs one pull per key at a time; later callers wait for it and
// share its result. The pull runs on a context of its own, so one caller
// giving up does not fail the others; it is cancelled only when every
// caller has given up.
type pullGroup struct {
	mu    sync.Mutex
	calls map[string]*pullCall
}

type pullCall struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelFunc
}

func (g *pullGroup) do(ctx context.Context, key string, fn func(ctx context.Context) error) error {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*pullCall{}
	}
	c, ok := g.calls[key]
	if !ok {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &pullCall{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go func() {
			c.err = fn(pctx)
			cancel()
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			c.cancel()
			// A new caller must not join a pull that is being cancelled.
			if g.calls[key] == c {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		return ctx.Err()
	}
}
