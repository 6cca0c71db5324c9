// Package integration tests berth against a real dockerd and Debian's CNI
// plugins. It runs with BERTH_INTEGRATION=1 (make test-integration) as
// root, after hack/setup.sh; without the variable every test skips, and
// with it a missing prerequisite fails the run.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/cli"
	"github.com/berth-project/berth/internal/config"
	"github.com/berth-project/berth/internal/naming"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	busybox = "berth.local/busybox:1.36"
	// testLabel marks every pod this package makes, so leak checks and
	// cleanup find them and nothing else.
	testLabel = "io.berth.test"
)

// suite is what TestMain prepared for every test: one CNI network of the
// suite's own (bridge, subnet and IPAM state), so allocations can be
// checked and everything is removed at the end.
type suite struct {
	cniConfDir string
	ipamDir    string
	bridge     string
	subnet     string
	docker     *client.Client
	tmp        string
}

var (
	theSuite  *suite
	setupErr  error
	berthOnce sync.Once
	berthBin  string
	berthErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		os.Exit(m.Run())
	}
	theSuite, setupErr = newSuite()
	code := m.Run()
	if theSuite != nil {
		theSuite.close()
	}
	os.Exit(code)
}

func newSuite() (*suite, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("integration tests need root")
	}
	tmp, err := os.MkdirTemp("", "berth-it-")
	if err != nil {
		return nil, err
	}
	s := &suite{tmp: tmp, bridge: fmt.Sprintf("berthit%d", os.Getpid()%100000), cniConfDir: filepath.Join(tmp, "net.d"), ipamDir: filepath.Join(tmp, "ipam")}
	dc, err := client.New(client.WithHostFromEnv(), client.WithAPIVersionNegotiation())
	if err != nil {
		return s, err
	}
	s.docker = dc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dc.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return s, fmt.Errorf("dockerd: %w (run hack/setup.sh)", err)
	}
	for _, img := range []string{config.DefaultPauseImage, busybox} {
		if _, err := dc.ImageInspect(ctx, img); err != nil {
			return s, fmt.Errorf("image %s: %w (run hack/setup.sh)", img, err)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return s, fmt.Errorf("CNI plugins: %w (run hack/setup.sh)", err)
	}
	s.subnet, err = freeSubnet()
	if err != nil {
		return s, err
	}
	if err := os.MkdirAll(s.cniConfDir, 0o755); err != nil {
		return s, err
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"berth-it","plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}`, s.bridge, s.ipamDir, s.subnet)
	return s, os.WriteFile(filepath.Join(s.cniConfDir, "10-berth-it.conflist"), []byte(conf), 0o644)
}

// freeSubnet picks a /24 that no local route overlaps: the suite's pods
// live on this machine only.
func freeSubnet() (string, error) {
	out, err := exec.Command("ip", "-4", "route", "show").Output()
	if err != nil {
		return "", fmt.Errorf("ip route: %w", err)
	}
	var routes []*net.IPNet
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if _, n, err := net.ParseCIDR(dst); err == nil {
			routes = append(routes, n)
		}
	}
	for i := 150; i < 250; i++ {
		cand := fmt.Sprintf("10.89.%d.0/24", i)
		_, cn, _ := net.ParseCIDR(cand)
		clash := false
		for _, r := range routes {
			if r.Contains(cn.IP) || cn.Contains(r.IP) {
				clash = true
				break
			}
		}
		if !clash {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free /24 in 10.89.150-249.0/24")
}

func (s *suite) close() {
	ctx := context.Background()
	if s.docker != nil {
		f := client.Filters{}
		f.Add("label", testLabel)
		if res, err := s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
			for _, c := range res.Items {
				s.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		s.docker.Close()
	}
	exec.Command("ip", "link", "del", s.bridge).Run()
	os.RemoveAll(s.tmp)
}

// env is one running berth for one test.
type env struct {
	t       *testing.T
	s       *suite
	root    string
	socket  string
	logDir  string
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient
	conn    *grpc.ClientConn
	stopped chan error
	cancel  context.CancelFunc
	logs    *syncBuffer
	// extra are flags of the test's own for berth serve.
	extra []string
}

// newEnv starts berth in-process through the same command line a user
// runs, on a socket and root dir of the test's own.
func newEnv(t *testing.T, extraArgs ...string) *env {
	t.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		t.Skip("integration test: set BERTH_INTEGRATION=1 (make test-integration)")
	}
	if setupErr != nil {
		t.Fatalf("integration prerequisites: %v", setupErr)
	}
	dir := t.TempDir()
	e := &env{t: t, s: theSuite, root: filepath.Join(dir, "root"), socket: filepath.Join(dir, "run", "berth.sock"), logDir: filepath.Join(dir, "logs"), extra: extraArgs}
	e.start()
	t.Cleanup(func() {
		e.cleanupPods()
		e.stop()
		if t.Failed() {
			t.Logf("berth log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *env) args() []string {
	return append([]string{"serve", "--listen", "unix://" + e.socket, "--root-dir", e.root,
		"--cni-conf-dir", e.s.cniConfDir, "--cni-bin-dir", "/usr/lib/cni", "--log-level", "debug"}, e.extra...)
}

func (e *env) start() {
	e.t.Helper()
	e.logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.stopped = make(chan error, 1)
	cmd := cli.NewRoot(io.Discard, e.logs)
	cmd.SetArgs(e.args())
	go func() { e.stopped <- cmd.ExecuteContext(ctx) }()
	e.dial()
}

func (e *env) dial() {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", e.socket); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("berth did not listen on %s; log:\n%s", e.socket, e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+e.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.conn = conn
	e.rt = runtimeapi.NewRuntimeServiceClient(conn)
	e.img = runtimeapi.NewImageServiceClient(conn)
}

// stop shuts berth down as SIGTERM does and waits for it.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.conn.Close()
	e.cancel()
	select {
	case err := <-e.stopped:
		if err != nil {
			e.t.Errorf("berth serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Errorf("berth did not stop within 30s")
	}
	e.cancel = nil
}

// restart stops berth and starts a new one on the same root and socket.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// podConfig is a sandbox config unique to this test.
func (e *env) podConfig(name string) *runtimeapi.PodSandboxConfig {
	uid := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(e.t.Name())), time.Now().UnixNano())
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "berth-it", Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(e.logDir, uid),
		Labels:       map[string]string{testLabel: "true", "test": sanitize(e.t.Name())},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func sanitize(s string) string {
	return strings.NewReplacer("/", ".", " ", ".").Replace(s)
}

// runPod runs a sandbox and returns its id.
func (e *env) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	r, err := e.rt.RunPodSandbox(e.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		e.t.Fatalf("RunPodSandbox: %v", err)
	}
	return r.PodSandboxId
}

// containerConfig runs sh -c script in busybox.
func containerConfig(name, script string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busybox},
		Command:  []string{"sh", "-c", script},
		LogPath:  name + "/0.log",
		Labels:   map[string]string{testLabel: "true"},
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

// runContainer creates and starts a container in a sandbox.
func (e *env) runContainer(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	e.t.Helper()
	c, err := e.rt.CreateContainer(e.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		e.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	if _, err := e.rt.StartContainer(e.ctx(), &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		e.t.Fatalf("StartContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return c.ContainerId
}

// waitExit waits until a container has exited and returns its status.
func (e *env) waitExit(id string, timeout time.Duration) *runtimeapi.ContainerStatus {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.rt.ContainerStatus(e.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			e.t.Fatalf("ContainerStatus: %v", err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st.Status
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s still %v after %v", id, st.Status.State, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// output is what a container wrote to stdout and stderr so far, read
// from Docker directly (CRI logs are another issue's work).
func (e *env) output(id string) string {
	e.t.Helper()
	rc, err := e.s.docker.ContainerLogs(e.ctx(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		e.t.Fatalf("docker logs %s: %v", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		e.t.Fatalf("docker logs %s: %v", id, err)
	}
	return out.String()
}

// waitOutput waits until a container's output contains want.
func (e *env) waitOutput(id, want string, timeout time.Duration) string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := e.output(id)
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s output lacks %q after %v:\n%s", id, want, timeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanupPods stops and removes, through berth, every sandbox of this
// test, then checks nothing of them is left in Docker, in berth's root or
// in the IPAM store.
func (e *env) cleanupPods() {
	if e.cancel == nil {
		return
	}
	ctx := context.Background()
	list, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"test": sanitize(e.t.Name())},
	}})
	if err != nil {
		e.t.Errorf("cleanup: ListPodSandbox: %v", err)
		return
	}
	for _, p := range list.Items {
		if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			e.t.Errorf("cleanup: StopPodSandbox %s: %v", p.Id, err)
		}
		if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			e.t.Errorf("cleanup: RemovePodSandbox %s: %v", p.Id, err)
		}
	}
	e.assertNothingLeft()
}

// assertNothingLeft fails the test if any container, checkpoint or IP
// allocation of this test's pods remains.
func (e *env) assertNothingLeft() {
	e.t.Helper()
	ctx := context.Background()
	f := client.Filters{}
	f.Add("label", naming.LabelManaged+"=true")
	res, err := e.s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Errorf("docker ps: %v", err)
		return
	}
	for _, c := range res.Items {
		d, err := naming.Decode(c.Labels)
		if err == nil && d.Labels["test"] == sanitize(e.t.Name()) {
			e.t.Errorf("container %s %v left behind", c.ID[:12], c.Names)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "sandboxes")); len(entries) > 0 {
		e.t.Errorf("%d sandbox directories left in %s", len(entries), e.root)
	}
	if leftIPs := e.allocatedIPs(); len(leftIPs) > 0 {
		e.t.Errorf("IP allocations left: %v", leftIPs)
	}
}

// allocatedIPs lists host-local's allocations in the suite network.
func (e *env) allocatedIPs() []string {
	entries, _ := os.ReadDir(filepath.Join(e.s.ipamDir, "berth-it"))
	var ips []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			ips = append(ips, en.Name())
		}
	}
	return ips
}

// berthBinary builds bin/berth once, for tests that must kill berth as a
// process.
func berthBinary(t *testing.T) string {
	t.Helper()
	berthOnce.Do(func() {
		berthBin = filepath.Join(theSuite.tmp, "berth")
		out, err := exec.Command("go", "build", "-o", berthBin, "github.com/berth-project/berth/cmd/berth").CombinedOutput()
		if err != nil {
			berthErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if berthErr != nil {
		t.Fatal(berthErr)
	}
	return berthBin
}

// syncBuffer is a bytes.Buffer safe for berth's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
