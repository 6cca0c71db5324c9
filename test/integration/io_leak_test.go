package integration

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// leakSlack allows for idle keep-alive connections (to dockerd, of the
// HTTP clients) whose number varies.
const leakSlack = 5

// TestIOLeaks: after 200 ExecSync calls and 50 exec and attach sessions
// over SPDY and WebSocket, berth (in this process) is back to the
// goroutines and open files it had before.
func TestIOLeaks(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("leaks", nil)
	sleeper := e.runContainer(podID, pod, containerConfig("sleeper", "sleep 3600"))
	ticker := e.runContainer(podID, pod, containerConfig("ticker", `while true; do echo tick; sleep 0.05; done`))
	ctx := e.ctx()

	execSync := func() {
		t.Helper()
		r := e.execSync(sleeper, 10, "echo", "hi")
		if r.ExitCode != 0 || string(r.Stdout) != "hi\n" {
			t.Fatalf("ExecSync = %q, exit %d", r.Stdout, r.ExitCode)
		}
	}
	execSession := func(tr string) {
		t.Helper()
		r, err := e.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: sleeper, Cmd: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		var out syncBuffer
		err = remoteCommand(ctx, tr, r.Url, remotecommand.StreamOptions{Stdin: strings.NewReader("hi\n"), Stdout: &out, Stderr: &out})
		if err != nil || out.String() != "hi\n" {
			t.Fatalf("exec session over %s = %q, %v", tr, out.String(), err)
		}
	}
	// An attach session ends when its client leaves: here after the first
	// output.
	attachSession := func(tr string) {
		t.Helper()
		r, err := e.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: ticker, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- remoteCommand(sctx, tr, r.Url, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
		}()
		deadline := time.After(10 * time.Second)
		for !strings.Contains(out.String(), "tick\n") {
			select {
			case err := <-done:
				t.Fatalf("attach session over %s ended before any output: %v", tr, err)
			case <-deadline:
				t.Fatalf("attach session over %s: no output in 10s", tr)
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("attach session over %s did not end 10s after its client left", tr)
		}
	}
	transports := []string{viaSPDY, viaWebSocket}

	// Warm up the pools and whatever starts lazily, then let it settle.
	for range 3 {
		execSync()
	}
	for _, tr := range transports {
		execSession(tr)
		attachSession(tr)
	}
	baseG, baseFD := settle(t)
	baseTotal := runtime.NumGoroutine()

	// The count sees a session's goroutines while it runs.
	r, err := e.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: ticker, Stdout: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- remoteCommand(sctx, viaSPDY, r.Url, remotecommand.StreamOptions{Stdout: &out}) }()
	waitText(t, &out, "tick\n", 10*time.Second)
	during := serverGoroutines()
	cancel()
	<-done
	if during <= baseG {
		t.Fatalf("%d goroutines during an attach session, baseline %d: the count does not see berth's sessions", during, baseG)
	}

	start := time.Now()
	for range 200 {
		execSync()
	}
	for i := range 50 {
		tr := transports[i%2]
		if i%4 < 2 {
			execSession(tr)
		} else {
			attachSession(tr)
		}
	}
	work := time.Since(start)
	peakG, peakFD := serverGoroutines(), openFDs(t)
	peakTotal := runtime.NumGoroutine()

	deadline := time.Now().Add(5 * time.Second)
	for {
		g, fd := serverGoroutines(), openFDs(t)
		if g <= baseG+leakSlack && fd <= baseFD+leakSlack {
			t.Logf("200 ExecSync + 50 exec/attach sessions (SPDY and WebSocket) in %v; slack %d", work.Round(time.Millisecond), leakSlack)
			t.Logf("goroutines without the test's client-go ones: baseline %d, right after the work %d, %d after %v", baseG, peakG, g, time.Since(deadline.Add(-5*time.Second)).Round(time.Millisecond))
			t.Logf("(%d during one attach session)", during)
			t.Logf("open fds: baseline %d, right after the work %d, now %d", baseFD, peakFD, fd)
			// The client's heartbeats end at their next ping.
			total := runtime.NumGoroutine()
			for end := time.Now().Add(7 * time.Second); total > baseTotal+leakSlack && time.Now().Before(end); total = runtime.NumGoroutine() {
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("all goroutines (runtime.NumGoroutine, with the client's): baseline %d, right after the work %d, %d once client-go's heartbeats ended", baseTotal, peakTotal, total)
			return
		}
		if time.Now().After(deadline) {
			var dump strings.Builder
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("after 5s: %d goroutines without the client's (baseline %d, right after the work %d), %d open fds (baseline %d, right after %d); slack %d\nopen fds:\n%s\ngoroutines:\n%s",
				g, baseG, peakG, fd, baseFD, peakFD, leakSlack, fdTargets(), dump.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serverGoroutines counts this process's goroutines but the test's own
// streaming clients': client-go's WebSocket executor keeps a heartbeat
// goroutine until its next ping (5 s) after a client cancelled the session
// without a close frame from the server. berth's and everything else's
// count.
func serverGoroutines() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\ngoroutine ") {
		if strings.TrimSpace(g) == "" || strings.Contains(g, "k8s.io/client-go/") || strings.Contains(g, "spdy.NewClientConnection") {
			continue
		}
		n++
	}
	return n
}

// settle waits until the goroutine and fd counts stop moving and returns
// them.
func settle(t *testing.T) (goroutines, fds int) {
	t.Helper()
	g, fd := serverGoroutines(), openFDs(t)
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		g2, fd2 := serverGoroutines(), openFDs(t)
		if g2 == g && fd2 == fd {
			break
		}
		g, fd = g2, fd2
	}
	return g, fd
}

// fdTargets lists what this process's fds point at, for a failure message.
func fdTargets() string {
	var b strings.Builder
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "  %s -> %s\n", e.Name(), target)
	}
	return b.String()
}
