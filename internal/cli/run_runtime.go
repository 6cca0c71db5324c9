package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
)

// runtimeConn is the CRI runtime berth run drives, and how to let go of
// it.
type runtimeConn struct {
	runtime internalapi.RuntimeService
	images  internalapi.ImageManagerService
	close   func()
}

// connectRuntime dials the runtime endpoint, or, with none, starts berth's
// own runtime in-process on a private socket: the manager talks CRI
// either way, the same code as against containerd.
func connectRuntime(ctx context.Context, errOut io.Writer, f runFlags) (*runtimeConn, error) {
	endpoint, stop := f.runtimeEndpoint, func() {}
	if endpoint == "" {
		dir, err := os.MkdirTemp("", "berth-run-")
		if err != nil {
			return nil, err
		}
		cfg := f.serve
		cfg.Listen = "unix://" + filepath.Join(dir, "berth.sock")
		if err := cfg.Validate(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		// done closes when the runtime has ended, with serveErr set.
		done := make(chan struct{})
		var serveErr error
		go func() {
			serveErr = serve(sctx, cfg, errOut)
			close(done)
		}()
		stop = func() {
			cancel()
			<-done
			os.RemoveAll(dir)
		}
		if err := waitSocket(filepath.Join(dir, "berth.sock"), done, &serveErr, 30*time.Second); err != nil {
			stop()
			if errors.Is(err, errRootInUse) {
				return nil, fmt.Errorf("%w; to run the pod on that berth, pass --runtime-endpoint with its socket (default unix:///run/berth/berth.sock)", err)
			}
			return nil, fmt.Errorf("start berth's runtime: %w", err)
		}
		endpoint = cfg.Listen
	}
	rt, err := remote.NewRemoteRuntimeService(ctx, endpoint, 2*time.Minute, nil, false)
	if err != nil {
		stop()
		return nil, fmt.Errorf("runtime endpoint %s: %w", endpoint, err)
	}
	imageEndpoint := f.imageEndpoint
	if imageEndpoint == "" {
		imageEndpoint = endpoint
	}
	img, err := remote.NewRemoteImageService(ctx, imageEndpoint, 2*time.Minute, nil, false)
	if err != nil {
		stop()
		return nil, fmt.Errorf("image endpoint %s: %w", imageEndpoint, err)
	}
	if _, err := rt.Version(ctx, "v1"); err != nil {
		stop()
		return nil, fmt.Errorf("runtime endpoint %s: %w", endpoint, err)
	}
	return &runtimeConn{runtime: rt, images: img, close: func() {
		_ = rt.Close(context.Background())
		_ = img.Close(context.Background())
		stop()
	}}, nil
}

// waitSocket waits until the in-process server accepts on path, or it
// ended (done closed) with *serveErr.
func waitSocket(path string, done <-chan struct{}, serveErr *error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("runtime ended: %w", *serveErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no socket at %s after %s", path, timeout)
		}
	}
}
