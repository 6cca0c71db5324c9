package integration

// Helpers of the TestRobust* tests: a berth of a test's own (in-process or
// the binary, with any flags) and leak checks. The CNI network of a test's
// own is in robust_cninet_test.go, the Docker API proxy in
// robust_dockerproxy_test.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/cli"
	"github.com/berth-project/berth/internal/naming"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// requireIntegration skips without BERTH_INTEGRATION=1 and fails when the
// suite could not be prepared, as newEnv does.
func requireIntegration(t *testing.T) {
	t.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		t.Skip("integration test: set BERTH_INTEGRATION=1 (make test-integration)")
	}
	if setupErr != nil {
		t.Fatalf("integration prerequisites: %v", setupErr)
	}
}

// shortTempDir is a temp dir with a short path: unix socket paths are
// limited to 108 bytes, which t.TempDir() under a long test name exceeds.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "brb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// randomID is a 64-hex-digit id that names nothing.
func randomID(t *testing.T) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// wantCode fails t unless err is a gRPC status with code whose message
// contains each of fields.
func wantCode(t *testing.T, err error, code codes.Code, fields ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Errorf("code = %v (error %v), want %v", st.Code(), err, code)
		return
	}
	for _, f := range fields {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("message %q does not name %q", st.Message(), f)
		}
	}
}

// waitFor polls check until it returns "" or timeout passes, and returns
// its last answer.
func waitFor(timeout time.Duration, check func() string) string {
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" || time.Now().After(deadline) {
			return msg
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dockerOutput is what a container wrote so far, read from Docker.
func dockerOutput(t *testing.T, id string) string {
	t.Helper()
	rc, err := theSuite.docker.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("docker logs %s: %v", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("docker logs %s: %v", id, err)
	}
	return out.String()
}

// ---------------------------------------------------------------------------
// Leak checks.

// leakState is what a failed call must leave as it was: berth's
// containers in Docker, sandbox directories and IP allocations.
type leakState struct {
	containers  map[string]string // id -> name
	sandboxDirs []string
	ips         []string
}

// takeLeakState records the state of a berth whose root is root and whose
// network allocations ips lists.
func takeLeakState(t *testing.T, root string, ips func() []string) leakState {
	t.Helper()
	s := leakState{containers: berthContainers(t), ips: ips()}
	entries, _ := os.ReadDir(filepath.Join(root, "sandboxes"))
	for _, en := range entries {
		s.sandboxDirs = append(s.sandboxDirs, en.Name())
	}
	slices.Sort(s.ips)
	return s
}

// assertSame fails t if after differs from s: a new berth container (made
// by this package's robustness tests or without any test label), a new or
// removed sandbox dir, a changed set of IP allocations.
func (s leakState) assertSame(t *testing.T, after leakState) {
	t.Helper()
	for id, name := range after.containers {
		if _, ok := s.containers[id]; !ok {
			t.Errorf("new container %s %s left behind", id[:12], name)
		}
	}
	if !slices.Equal(s.sandboxDirs, after.sandboxDirs) {
		t.Errorf("sandbox dirs changed: before %v, after %v", s.sandboxDirs, after.sandboxDirs)
	}
	if !slices.Equal(s.ips, after.ips) {
		t.Errorf("IP allocations changed: before %v, after %v", s.ips, after.ips)
	}
}

// berthContainers lists every container with berth's labels (`docker ps
// -a --filter label=io.berth.managed=true`), except those of pods another
// test package's tests made: other engineers may run their tests on this
// dockerd at the same time.
func berthContainers(t *testing.T) map[string]string {
	t.Helper()
	f := client.Filters{}
	f.Add("label", naming.LabelManaged+"=true")
	res, err := theSuite.docker.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	// A container's own labels need not say which test made it: its
	// sandbox's do.
	podTest := map[string]string{}
	for _, c := range res.Items {
		if d, err := naming.Decode(c.Labels); err == nil && d.Type == naming.TypeSandbox {
			podTest[c.ID] = d.Labels["test"]
		}
	}
	out := map[string]string{}
	for _, c := range res.Items {
		if d, err := naming.Decode(c.Labels); err == nil {
			tn, ok := d.Labels["test"]
			if d.Type == naming.TypeContainer {
				tn, ok = podTest[d.SandboxID]
			}
			if ok && tn != "" && !strings.HasPrefix(tn, "TestRobust") {
				continue
			}
		}
		out[c.ID] = strings.Join(c.Names, ",")
	}
	return out
}

// labelledContainers lists the Docker containers of pods labelled
// test=label, whatever their state.
func labelledContainers(t *testing.T, label string) []string {
	t.Helper()
	f := client.Filters{}
	f.Add("label", naming.LabelManaged+"=true")
	res, err := theSuite.docker.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	pods := map[string]bool{}
	for _, c := range res.Items {
		if d, err := naming.Decode(c.Labels); err == nil && d.Type == naming.TypeSandbox && d.Labels["test"] == label {
			pods[c.ID] = true
		}
	}
	var ids []string
	for _, c := range res.Items {
		if d, err := naming.Decode(c.Labels); err == nil && (pods[c.ID] || pods[d.SandboxID] || d.Labels["test"] == label) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// ---------------------------------------------------------------------------
// A berth of the test's own.

// berthOptions choose how an ownBerth runs; zero values are the suite's.
type berthOptions struct {
	// DockerHost is --docker-host; "" is the suite's dockerd.
	DockerHost string
	// CNIConfDir is --cni-conf-dir; "" is the suite network.
	CNIConfDir string
	// CNIBinDirs is --cni-bin-dir; "" is /usr/lib/cni.
	CNIBinDirs string
	// Binary runs the berth binary as a process rather than in-process,
	// so the test can kill it or send it signals.
	Binary bool
}

// ownBerth is a berth with a root, socket and flags of the test's own.
// Its pods carry the label test=label; at cleanup they are removed through
// berth (started again against the real dockerd if need be) and anything
// still in Docker is force-removed and reported.
type ownBerth struct {
	t      *testing.T
	opts   berthOptions
	dir    string
	root   string
	socket string
	logDir string
	label  string
	logs   *syncBuffer

	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient

	running bool
	// in-process
	cancel  context.CancelFunc
	stopped chan error
	// binary
	cmd    *exec.Cmd
	exited chan error
}

func newOwnBerth(t *testing.T, opts berthOptions) *ownBerth {
	t.Helper()
	requireIntegration(t)
	dir := shortTempDir(t)
	b := &ownBerth{
		t: t, opts: opts, dir: dir,
		root: filepath.Join(dir, "root"), socket: filepath.Join(dir, "run", "berth.sock"), logDir: filepath.Join(dir, "logs"),
		label: sanitize(t.Name()), logs: &syncBuffer{},
	}
	t.Cleanup(b.cleanup)
	b.start()
	return b
}

func (b *ownBerth) args() []string {
	conf := b.opts.CNIConfDir
	if conf == "" {
		conf = theSuite.cniConfDir
	}
	bins := b.opts.CNIBinDirs
	if bins == "" {
		bins = "/usr/lib/cni"
	}
	args := []string{"serve", "--listen", "unix://" + b.socket, "--root-dir", b.root,
		"--cni-conf-dir", conf, "--cni-bin-dir", bins, "--log-level", "debug"}
	if b.opts.DockerHost != "" {
		args = append(args, "--docker-host", b.opts.DockerHost)
	}
	return args
}

// start starts berth and connects to it.
func (b *ownBerth) start() {
	b.t.Helper()
	fmt.Fprintf(b.logs, "---- start %s (%v)\n", time.Now().Format(time.TimeOnly), b.args())
	if b.opts.Binary {
		cmd := exec.Command(berthBinary(b.t), b.args()...)
		cmd.Stdout, cmd.Stderr = b.logs, b.logs
		if err := cmd.Start(); err != nil {
			b.t.Fatalf("start berth: %v", err)
		}
		b.cmd = cmd
		b.exited = make(chan error, 1)
		go func() { b.exited <- cmd.Wait() }()
	} else {
		ctx, cancel := context.WithCancel(context.Background())
		b.cancel = cancel
		b.stopped = make(chan error, 1)
		cmd := cli.NewRoot(io.Discard, b.logs)
		cmd.SetArgs(b.args())
		stopped := b.stopped
		go func() { stopped <- cmd.ExecuteContext(ctx) }()
	}
	b.running = true
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", b.socket); err == nil {
			c.Close()
			break
		}
		if b.opts.Binary {
			select {
			case err := <-b.exited:
				b.running = false
				b.t.Fatalf("berth exited at start (%v); log:\n%s", err, b.logs.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("berth did not listen on %s; log:\n%s", b.socket, b.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+b.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.t.Fatal(err)
	}
	b.conn = conn
	b.rt = runtimeapi.NewRuntimeServiceClient(conn)
	b.img = runtimeapi.NewImageServiceClient(conn)
}

// stop shuts berth down as SIGTERM does and returns how it ended: for the
// binary its exit status (nil for 0), in-process what serve returned.
func (b *ownBerth) stop() error {
	b.t.Helper()
	if !b.running {
		return nil
	}
	b.conn.Close()
	b.running = false
	if b.opts.Binary {
		if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		return b.waitExit(30 * time.Second)
	}
	b.cancel()
	select {
	case err := <-b.stopped:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("berth did not stop within 30s")
	}
}

// waitExit waits for the binary to exit and returns its status.
func (b *ownBerth) waitExit(timeout time.Duration) error {
	select {
	case err := <-b.exited:
		return err
	case <-time.After(timeout):
		b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("berth did not exit within %v (killed)", timeout)
	}
}

// kill SIGKILLs the berth binary: a crash, with no cleanup of any kind.
func (b *ownBerth) kill() {
	b.t.Helper()
	if !b.opts.Binary {
		b.t.Fatal("kill needs berthOptions.Binary")
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatalf("kill berth: %v", err)
	}
	<-b.exited
	b.conn.Close()
	b.running = false
	fmt.Fprintf(b.logs, "---- SIGKILL %s\n", time.Now().Format(time.TimeOnly))
}

func (b *ownBerth) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	b.t.Cleanup(cancel)
	return ctx
}

// podConfig is a sandbox config unique to this test, labelled for cleanup.
func (b *ownBerth) podConfig(name string) *runtimeapi.PodSandboxConfig {
	uid := fmt.Sprintf("rb-%s-%d", name, time.Now().UnixNano())
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "berth-it", Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(b.logDir, uid),
		Labels:       map[string]string{testLabel: "true", "test": b.label},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func (b *ownBerth) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	b.t.Helper()
	r, err := b.rt.RunPodSandbox(b.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		b.t.Fatalf("RunPodSandbox: %v", err)
	}
	return r.PodSandboxId
}

func (b *ownBerth) runContainer(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	b.t.Helper()
	c, err := b.rt.CreateContainer(b.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		b.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	if _, err := b.rt.StartContainer(b.ctx(), &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		b.t.Fatalf("StartContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return c.ContainerId
}

// pods lists this test's sandboxes.
func (b *ownBerth) pods() []*runtimeapi.PodSandbox {
	b.t.Helper()
	list, err := b.rt.ListPodSandbox(b.ctx(), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"test": b.label},
	}})
	if err != nil {
		b.t.Fatalf("ListPodSandbox: %v", err)
	}
	return list.Items
}

// sandboxDirs lists the sandbox directories in berth's root.
func (b *ownBerth) sandboxDirs() []string {
	entries, _ := os.ReadDir(filepath.Join(b.root, "sandboxes"))
	var out []string
	for _, en := range entries {
		out = append(out, en.Name())
	}
	return out
}

// removePods stops and removes every sandbox of this test through berth.
func (b *ownBerth) removePods() {
	b.t.Helper()
	for _, p := range b.pods() {
		if _, err := b.rt.StopPodSandbox(b.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			b.t.Errorf("StopPodSandbox %s: %v", p.Id, err)
		}
		if _, err := b.rt.RemovePodSandbox(b.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			b.t.Errorf("RemovePodSandbox %s: %v", p.Id, err)
		}
	}
}

func (b *ownBerth) cleanup() {
	t := b.t
	// Pods are removed by a berth on the real dockerd.
	if b.running && b.opts.DockerHost != "" {
		b.stop()
	}
	b.opts.DockerHost = ""
	if !b.running {
		b.start()
	}
	b.removePods()
	if err := b.stop(); err != nil {
		t.Errorf("berth stop: %v", err)
	}
	for _, id := range labelledContainers(t, b.label) {
		t.Errorf("container %s left behind; removing it", id[:12])
		theSuite.docker.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
	}
	if t.Failed() {
		t.Logf("berth log (%s):\n%s", b.root, b.logs.String())
	}
}
