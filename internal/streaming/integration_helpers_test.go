package streaming_test

// Integration tests against the real dockerd. They run with
// BERTH_INTEGRATION=1, where a missing prerequisite (daemon, image, root)
// is a failure; otherwise they skip. Containers come from testImage,
// carry testLabel and are removed by the test that made them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/docker"
	"github.com/berth-project/berth/internal/streaming"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	testImage      = "berth.local/busybox:1.36"
	testLabel      = "io.berth.test"
	testLabelValue = "streaming"
)

var (
	setupOnce   sync.Once
	setupDocker *client.Client
	setupErr    error
)

// requireDocker skips without BERTH_INTEGRATION=1 and fails when the
// daemon, the image or root is missing.
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		t.Skip("integration test: set BERTH_INTEGRATION=1")
	}
	setupOnce.Do(func() {
		if os.Geteuid() != 0 {
			setupErr = errors.New("needs root (setns into pod namespaces, kill exec'd processes)")
			return
		}
		d, err := docker.New("")
		if err != nil {
			setupErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := d.Ping(ctx, client.PingOptions{}); err != nil {
			setupErr = fmt.Errorf("docker daemon: %w", err)
			return
		}
		if _, err := d.ImageInspect(ctx, testImage); err != nil {
			setupErr = fmt.Errorf("image %s: %w", testImage, err)
			return
		}
		sweepStale(ctx, d)
		setupDocker = d
	})
	if setupErr != nil {
		t.Fatalf("integration prerequisites: %v", setupErr)
	}
	return setupDocker
}

// sweepStale removes this suite's containers left by a run that died
// before its cleanup (a panic, a kill). Only old ones: another run of the
// suite may be going on.
func sweepStale(ctx context.Context, d *client.Client) {
	list, err := d.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", testLabel+"="+testLabelValue),
	})
	if err != nil {
		return
	}
	for _, c := range list.Items {
		if time.Since(time.Unix(c.Created, 0)) > 10*time.Minute {
			_, _ = d.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
}

// runContainer starts a container of testImage running cmd and removes it
// when the test ends.
func runContainer(t *testing.T, d *client.Client, cmd []string, mutate func(*container.Config, *container.HostConfig)) string {
	t.Helper()
	cfg := &container.Config{
		Image:  testImage,
		Cmd:    cmd,
		Labels: map[string]string{testLabel: testLabelValue},
	}
	host := &container.HostConfig{}
	if mutate != nil {
		mutate(cfg, host)
	}
	ctx := context.Background()
	created, err := d.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	t.Cleanup(func() {
		if _, err := d.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container %s: %v", created.ID, err)
		}
	})
	if _, err := d.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return created.ID
}

// resolver treats a plain container as a pod sandbox, as berth's cri
// package does with the pause container.
func resolver(d *client.Client) streaming.SandboxResolver {
	return func(ctx context.Context, id string) (int, bool, error) {
		res, err := d.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return 0, false, err
		}
		c := res.Container
		hostNetwork := c.HostConfig != nil && c.HostConfig.NetworkMode.IsHost()
		return c.State.Pid, hostNetwork, nil
	}
}

// startServer serves a streaming server until the test ends.
func startServer(t *testing.T, d *client.Client, mutate func(*streaming.Options)) *streaming.Server {
	t.Helper()
	opts := streaming.Options{
		Docker:  d,
		Sandbox: resolver(d),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := streaming.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// The client transports every session test runs over.
const (
	overSPDY      = "spdy"
	overWebSocket = "websocket"
)

var transports = []string{overSPDY, overWebSocket}

var clientConfig = &rest.Config{TLSClientConfig: rest.TLSClientConfig{Insecure: true}}

// stream runs a remote command session on rawURL as kubectl would.
func stream(ctx context.Context, transport, rawURL string, opts remotecommand.StreamOptions) error {
	var exec remotecommand.Executor
	var err error
	switch transport {
	case overSPDY:
		var u *url.URL
		if u, err = url.Parse(rawURL); err == nil {
			exec, err = remotecommand.NewSPDYExecutor(clientConfig, "POST", u)
		}
	case overWebSocket:
		exec, err = remotecommand.NewWebSocketExecutor(clientConfig, "GET", rawURL)
	default:
		err = fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		return err
	}
	return exec.StreamWithContext(ctx, opts)
}

// execURL asks the server for an exec URL.
func execURL(t *testing.T, s *streaming.Server, req *runtimeapi.ExecRequest) string {
	t.Helper()
	resp, err := s.GetExec(req)
	if err != nil {
		t.Fatalf("GetExec: %v", err)
	}
	return resp.Url
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller, which can
// wait for text to show up.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output within %s; got %q", text, timeout, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processes lists the command lines running in the container.
func processes(t *testing.T, d *client.Client, containerID string) string {
	t.Helper()
	out, _, code, err := streaming.ExecSync(t.Context(), d, containerID, []string{"ps"}, 10*time.Second, streaming.ExecSyncOutputLimit)
	if err != nil || code != 0 {
		t.Fatalf("ps in container: code %d, %v", code, err)
	}
	return string(out)
}

// waitGone waits until no process in the container runs cmdline.
func waitGone(t *testing.T, d *client.Client, containerID, cmdline string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ps := processes(t, d, containerID)
		if !strings.Contains(ps, cmdline) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q still runs in the container after %s:\n%s", cmdline, timeout, ps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
