package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/cli"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criRecord is one line of a CRI log file:
// "<RFC3339Nano> <stdout|stderr> <P|F> <text>".
type criRecord struct {
	Time    time.Time
	Stream  string
	Partial bool
	Text    string
}

// criLine is a whole line of a stream, its P records joined to their F.
type criLine struct {
	Stream string
	Text   string
}

// parseCRILog parses a CRI log file's content strictly: every record in
// the kubelet's format. A last line without its newline (a record being
// written) is left out when complete is false, an error otherwise.
func parseCRILog(b []byte, complete bool) ([]criRecord, error) {
	var recs []criRecord
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			if complete {
				return recs, fmt.Errorf("record %d: no newline at the end of the file: %q", len(recs)+1, clip(string(b)))
			}
			break
		}
		line := string(b[:nl])
		b = b[nl+1:]
		ts, rest, ok1 := strings.Cut(line, " ")
		stream, rest, ok2 := strings.Cut(rest, " ")
		tag, text, ok3 := strings.Cut(rest, " ")
		if !ok1 || !ok2 || !ok3 {
			return recs, fmt.Errorf("record %d %q: not <time> <stream> <tag> <text>", len(recs)+1, clip(line))
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return recs, fmt.Errorf("record %d %q: timestamp: %v", len(recs)+1, clip(line), err)
		}
		if stream != "stdout" && stream != "stderr" {
			return recs, fmt.Errorf("record %d %q: stream %q", len(recs)+1, clip(line), stream)
		}
		if tag != "P" && tag != "F" {
			return recs, fmt.Errorf("record %d %q: tag %q", len(recs)+1, clip(line), tag)
		}
		recs = append(recs, criRecord{Time: t, Stream: stream, Partial: tag == "P", Text: text})
	}
	return recs, nil
}

// readCRILog reads and parses a CRI log file; see parseCRILog.
func readCRILog(t *testing.T, path string, complete bool) []criRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read CRI log: %v", err)
	}
	recs, err := parseCRILog(b, complete)
	if err != nil {
		t.Fatalf("CRI log %s: %v", path, err)
	}
	return recs
}

// reassemble joins each stream's P records to the F record that ends
// them. A stream's unfinished line at the end is returned as a line too.
func reassemble(recs []criRecord) []criLine {
	var out []criLine
	pending := map[string]*strings.Builder{}
	for _, r := range recs {
		b := pending[r.Stream]
		if b == nil {
			b = &strings.Builder{}
			pending[r.Stream] = b
		}
		b.WriteString(r.Text)
		if !r.Partial {
			out = append(out, criLine{Stream: r.Stream, Text: b.String()})
			b.Reset()
		}
	}
	for _, s := range []string{"stdout", "stderr"} {
		if b := pending[s]; b != nil && b.Len() > 0 {
			out = append(out, criLine{Stream: s, Text: b.String()})
		}
	}
	return out
}

// streamTexts are the texts of a stream's lines.
func streamTexts(lines []criLine, stream string) []string {
	var out []string
	for _, l := range lines {
		if l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

// logPathOf is where the CRI puts a container's log: the sandbox's
// log_directory joined with the container's log_path.
func logPathOf(pod *runtimeapi.PodSandboxConfig, ctr *runtimeapi.ContainerConfig) string {
	return filepath.Join(pod.GetLogDirectory(), ctr.GetLogPath())
}

// waitLog polls a CRI log file until done accepts its lines, then until it
// has not grown for settle, and returns its lines (a complete file: every
// record ends in a newline).
func waitLog(t *testing.T, path string, timeout, settle time.Duration, done func([]criLine) bool) []criLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []byte
	stableSince := time.Time{}
	for {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read CRI log: %v", err)
		}
		recs, perr := parseCRILog(b, false)
		if perr != nil {
			t.Fatalf("CRI log %s: %v", path, perr)
		}
		lines := reassemble(recs)
		if done(lines) {
			switch {
			case stableSince.IsZero() || !bytes.Equal(b, last):
				stableSince = time.Now()
			case time.Since(stableSince) >= settle:
				if _, err := parseCRILog(b, true); err != nil {
					t.Fatalf("CRI log %s: %v", path, err)
				}
				return lines
			}
		} else {
			stableSince = time.Time{}
		}
		last = b
		if time.Now().After(deadline) {
			t.Fatalf("CRI log %s: not done after %v; %d lines, last ones %q", path, timeout, len(lines), tailLines(lines, 5))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastText is the text of the last line of lines, "" for none.
func lastText(lines []criLine) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1].Text
}

func tailLines(lines []criLine, n int) []criLine {
	return lines[max(0, len(lines)-n):]
}

// checkNumbered reports how texts differ from "1".."n", one each, in
// order: "" if they do not.
func checkNumbered(texts []string, n int) string {
	var problems []string
	seen := make(map[int]int, n)
	prev := 0
	outOfOrder := 0
	for i, s := range texts {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > n {
			problems = append(problems, fmt.Sprintf("line %d is %q", i+1, clip(s)))
			continue
		}
		seen[v]++
		if v <= prev && outOfOrder < 5 {
			outOfOrder++
			problems = append(problems, fmt.Sprintf("line %d is %d after %d", i+1, v, prev))
		}
		prev = v
	}
	var missing, dup []int
	for v := 1; v <= n; v++ {
		switch c := seen[v]; {
		case c == 0:
			missing = append(missing, v)
		case c > 1:
			dup = append(dup, v)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d numbers missing (%s)", len(missing), ranges(missing)))
	}
	if len(dup) > 0 {
		problems = append(problems, fmt.Sprintf("%d numbers repeated (%s)", len(dup), ranges(dup)))
	}
	if len(problems) > 12 {
		problems = append(problems[:12], "...")
	}
	return strings.Join(problems, "; ")
}

// ranges writes sorted numbers as "1-5,9".
func ranges(vs []int) string {
	var parts []string
	for i := 0; i < len(vs); {
		j := i
		for j+1 < len(vs) && vs[j+1] == vs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(vs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", vs[i], vs[j]))
		}
		i = j + 1
	}
	if len(parts) > 10 {
		parts = append(parts[:10], "...")
	}
	return strings.Join(parts, ",")
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// steadyPrinter prints "1".."n" on stdout, pausing 10 ms every 50 lines:
// 20,000 lines take about 4-5 s, in bursts short enough that a rotation
// or a restart falls within one as likely as between two.
func steadyPrinter(n int) string {
	// The final sleep keeps the container running for a reopen or restart
	// that a loaded machine delays past the last line.
	return fmt.Sprintf(`i=1; while [ $i -le %d ]; do echo $i; i=$((i+1)); if [ $((i %% 50)) -eq 0 ]; then sleep 0.01; fi; done; sleep 2`, n)
}

// countAtLeast is a waitLog condition: at least n lines.
func countAtLeast(n int) func([]criLine) bool {
	return func(l []criLine) bool { return len(l) >= n }
}

// kubeletClient is a CRI client to e's berth with the kubelet's (and
// crictl's) message limit, 16 MiB, rather than gRPC's default 4 MiB.
func (e *env) kubeletClient() runtimeapi.RuntimeServiceClient {
	e.t.Helper()
	conn, err := grpc.NewClient("unix://"+e.socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// execSync runs cmd through berth's ExecSync, failing the test on error.
func (e *env) execSync(id string, timeout int64, cmd ...string) *runtimeapi.ExecSyncResponse {
	e.t.Helper()
	r, err := e.rt.ExecSync(e.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
	if err != nil {
		e.t.Fatalf("ExecSync %q: %v", cmd, err)
	}
	return r
}

// processList is `ps -o pid,args` in the container.
func (e *env) processList(id string) string {
	e.t.Helper()
	r := e.execSync(id, 10, "ps", "-o", "pid,args")
	if r.ExitCode != 0 {
		e.t.Fatalf("ps in %s: exit %d: %s", id, r.ExitCode, r.Stderr)
	}
	return string(r.Stdout)
}

// Client transports of the remote command protocols.
const (
	viaSPDY      = "spdy"
	viaWebSocket = "websocket"
)

// remoteCommand runs one exec or attach session on rawURL as the kubelet
// (proxying for kubectl) does, over SPDY or WebSocket.
func remoteCommand(ctx context.Context, transport, rawURL string, opts remotecommand.StreamOptions) error {
	cfg := &rest.Config{TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	var ex remotecommand.Executor
	var err error
	switch transport {
	case viaSPDY:
		var u *url.URL
		if u, err = url.Parse(rawURL); err == nil {
			ex, err = remotecommand.NewSPDYExecutor(cfg, "POST", u)
		}
	case viaWebSocket:
		ex, err = remotecommand.NewWebSocketExecutor(cfg, "GET", rawURL)
	default:
		err = fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, opts)
}

// waitText waits until b holds text.
func waitText(t *testing.T, b *syncBuffer, text string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := b.String()
		if strings.Contains(s, text) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v; got %q", text, timeout, clip(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bg is a crictl running in the background.
type bg struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

// start runs crictl with args in the background with stdin; ctx ending
// kills it.
func (c *crictl) start(ctx context.Context, stdin io.Reader, args ...string) *bg {
	c.t.Helper()
	cmd := exec.CommandContext(ctx, c.bin, append(slices.Clone(c.args), args...)...)
	b := &bg{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, b.stdout, b.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("crictl %s: %v", strings.Join(args, " "), err)
	}
	go func() { b.done <- cmd.Wait() }()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.done
		b.done <- nil
	})
	return b
}

// wait waits for a background crictl to end.
func (b *bg) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("crictl %s still running after %v; stdout %q stderr %q", strings.Join(b.cmd.Args[1:], " "), timeout, clip(b.stdout.String()), clip(b.stderr.String()))
		return nil
	}
}

// runIn runs crictl with stdin to its end, bounded by timeout.
func (c *crictl) runIn(timeout time.Duration, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(slices.Clone(c.args), args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %v)", err, timeout)
	}
	return out.String(), errOut.String(), err
}

// ptyRun is a crictl whose stdin, stdout and stderr are a pseudo-terminal
// it has as its controlling terminal, as in a user's shell.
type ptyRun struct {
	master *os.File
	out    *syncBuffer
	cmd    *exec.Cmd
	done   chan error
}

// startPTY runs crictl with args on a new pseudo-terminal of rows x cols.
// It opens the terminal with x/sys/unix as github.com/creack/pty would.
func (c *crictl) startPTY(ctx context.Context, rows, cols uint16, args ...string) *ptyRun {
	c.t.Helper()
	master, slave, err := openPTY()
	if err != nil {
		c.t.Fatalf("open pty: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		c.t.Fatalf("set pty size: %v", err)
	}
	cmd := exec.CommandContext(ctx, c.bin, append(slices.Clone(c.args), args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("crictl %s: %v", strings.Join(args, " "), err)
	}
	slave.Close()
	p := &ptyRun{master: master, out: &syncBuffer{}, cmd: cmd, done: make(chan error, 1)}
	copied := make(chan struct{})
	go func() {
		io.Copy(p.out, master) // ends with EIO once crictl is gone
		close(copied)
	}()
	go func() { p.done <- cmd.Wait() }()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		master.Close()
		<-copied
	})
	return p
}

// resize sets the terminal's size: the kernel sends crictl SIGWINCH.
func (p *ptyRun) resize(rows, cols uint16) error {
	return unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// wait waits for the crictl on the terminal to end.
func (p *ptyRun) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("crictl %s still running after %v; terminal shows %q", strings.Join(p.cmd.Args[1:], " "), timeout, clip(p.out.String()))
		return nil
	}
}

// openPTY opens a new pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// terminalText is terminal output as lines: carriage returns dropped.
func terminalText(s string) string {
	return strings.ReplaceAll(s, "\r", "")
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// startOtherBerth starts a second berth in-process, with a root, socket
// and streaming port of its own, on the same dockerd and CNI network (as
// another test's or a conformance run's berth does), and returns a
// function that stops it and returns its log.
func startOtherBerth(t *testing.T) (stop func() string) {
	t.Helper()
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "berth.sock")
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	cmd := cli.NewRoot(io.Discard, logs)
	cmd.SetArgs([]string{"serve", "--listen", "unix://" + socket, "--root-dir", filepath.Join(dir, "root"),
		"--cni-conf-dir", theSuite.cniConfDir, "--cni-bin-dir", "/usr/lib/cni", "--log-level", "debug"})
	go func() { stopped <- cmd.ExecuteContext(ctx) }()
	done := false
	stop = func() string {
		if !done {
			done = true
			cancel()
			if err := <-stopped; err != nil {
				t.Errorf("second berth: %v", err)
			}
		}
		return logs.String()
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("second berth did not listen; log:\n%s", stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPrinted waits until the container has written n lines, as Docker
// tells (not the CRI file, whose copier may lag), and fails if it exits
// first.
func (e *env) waitPrinted(id string, n int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Count(e.output(id), "\n") >= n {
			if st := e.containerStatus(id).State; st != runtimeapi.ContainerState_CONTAINER_RUNNING {
				e.t.Fatalf("container %s is %v after %d lines; the test needs it still printing", id, st, n)
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s has not printed %d lines in %v", id, n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
