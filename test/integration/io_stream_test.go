package integration

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestIOExecTTY: `crictl exec -it` on a terminal, as a user types it: the
// command has a terminal, of the user's size, and follows a resize.
func TestIOExecTTY(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	pod, podID := e.startPod("tty", nil)
	id := e.runContainer(podID, pod, containerConfig("sleeper", "sleep 3600"))

	// The first size may reach the engine just after the process starts
	// (Docker 20.10 takes it by resize only; until then the terminal is
	// 0x0, which busybox stty reports as an error): wait for it; then wait
	// for the user's input and for the new size.
	script := `if [ -t 0 ]; then echo tty=yes; else echo tty=no; fi
i=0; while [ $i -lt 50 ]; do case "$(stty size 2>/dev/null)" in [1-9]*" "[1-9]*) break;; esac; sleep 0.1; i=$((i+1)); done
echo size1=$(stty size)
read x
i=0; until [ "$(stty size 2>/dev/null)" = "40 120" ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
echo size2=$(stty size)
echo got=$x`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := c.startPTY(ctx, 30, 100, "exec", "-it", id, "sh", "-c", script)
	waitText(t, p.out, "size1=", 15*time.Second)
	if err := p.resize(40, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := p.master.WriteString("hello\r"); err != nil {
		t.Fatal(err)
	}
	err := p.wait(t, 20*time.Second)
	out := terminalText(p.out.String())
	kv := keyValues(out)
	if err != nil || kv["tty"] != "yes" || kv["size1"] != "30 100" || kv["size2"] != "40 120" || kv["got"] != "hello" {
		t.Errorf("crictl exec -it: err %v, terminal showed %q; want tty=yes size1=30 100 size2=40 120 got=hello", err, out)
	}
}

// TestIOExecStdin: `crictl exec -i` passes stdin to the command, which
// sees its end, over both transports crictl offers.
func TestIOExecStdin(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	pod, podID := e.startPod("stdin", nil)
	id := e.runContainer(podID, pod, containerConfig("sleeper", "sleep 3600"))
	in := strings.Repeat("the quick brown fox\n", 2000) + "last line without newline"
	for _, tr := range []string{viaSPDY, viaWebSocket} {
		start := time.Now()
		out, errOut, err := c.runIn(30*time.Second, strings.NewReader(in), "exec", "-i", "--transport", tr, id, "sh", "-c", "cat; echo; echo cat-ended >&2")
		if err != nil || out != in+"\n" || errOut != "cat-ended\n" {
			t.Errorf("crictl exec -i --transport %s cat: err %v after %v, %d bytes out (want %d), stderr %q, tail %q", tr, err, time.Since(start).Round(time.Millisecond), len(out), len(in)+1, errOut, tailOf(out, 40))
		}
	}
}

// TestIOAttach: `crictl attach` to a container with stdin and a terminal,
// and to one without either, which still gets the output.
func TestIOAttach(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	pod, podID := e.startPod("attach", nil)

	t.Run("stdin and tty", func(t *testing.T) {
		cfg := containerConfig("interactive", `read l; if [ -t 0 ]; then t=yes; else t=no; fi; echo "got=$l tty=$t"; sleep 1`)
		cfg.Stdin, cfg.Tty = true, true
		id := e.forT(t).runContainer(podID, pod, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p := c.startPTY(ctx, 30, 100, "attach", "-i", "-t", id)
		if _, err := p.master.WriteString("hello-attach\r"); err != nil {
			t.Fatal(err)
		}
		// The container ends after its answer, and the session with it.
		err := p.wait(t, 20*time.Second)
		out := terminalText(p.out.String())
		if !strings.Contains(out, "got=hello-attach tty=yes") {
			t.Errorf("crictl attach -it: err %v, terminal showed %q; want got=hello-attach tty=yes", err, out)
		}
		// A terminal's output is one stream, logged as stdout.
		lines := waitLog(t, logPathOf(pod, cfg), 20*time.Second, 300*time.Millisecond, func(l []criLine) bool {
			return slices.ContainsFunc(l, func(l criLine) bool { return strings.HasPrefix(l.Text, "got=") })
		})
		var texts []string
		for _, l := range lines {
			if l.Stream != "stdout" {
				t.Errorf("TTY container logged %+v on %s", l, l.Stream)
			}
			texts = append(texts, strings.TrimSuffix(l.Text, "\r"))
		}
		if want := []string{"hello-attach", "got=hello-attach tty=yes"}; !slices.Equal(texts, want) {
			t.Errorf("TTY container's log lines %q, want %q (the terminal's echo, then the answer)", texts, want)
		}
	})

	t.Run("output only", func(t *testing.T) {
		cfg := containerConfig("ticker", `i=0; while true; do echo out-$i; echo err-$i >&2; i=$((i+1)); sleep 0.2; done`)
		id := e.forT(t).runContainer(podID, pod, cfg)
		path := logPathOf(pod, cfg)
		before := waitLog(t, path, 20*time.Second, 0, countAtLeast(2))
		n := len(streamTexts(before, "stdout"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := c.start(ctx, nil, "attach", id)
		// Output written after the attach began.
		waitText(t, a.stdout, "out-"+strconv.Itoa(n+5)+"\n", 15*time.Second)
		waitText(t, a.stderr, "err-"+strconv.Itoa(n+5)+"\n", 15*time.Second)
		cancel()
		a.wait(t, 10*time.Second)
		for _, l := range strings.Split(strings.TrimSpace(a.stdout.String()), "\n") {
			if !strings.HasPrefix(l, "out-") {
				t.Errorf("crictl attach stdout has %q; stdout is out-N lines only", l)
			}
		}
	})
}

// TestIOStreamingURLs: the URLs berth hands out are absolute, on loopback,
// and good for one session; exec runs over SPDY and over WebSocket (what
// the kubelet proxies for kubectl 1.36+) with output and exit code.
func TestIOStreamingURLs(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("urls", nil)
	id := e.runContainer(podID, pod, containerConfig("sleeper", "sleep 3600"))
	ctx := e.ctx()

	exec, err := e.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "once"}, Stdout: true})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	att, err := e.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	pf, err := e.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	for kind, raw := range map[string]string{"exec": exec.Url, "attach": att.Url, "portforward": pf.Url} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s URL %q: %v", kind, raw, err)
			continue
		}
		port, _ := strconv.Atoi(u.Port())
		if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || port <= 0 || !strings.HasPrefix(u.Path, "/"+kind+"/") || len(u.Path) <= len(kind)+2 {
			t.Errorf("%s URL %q, want absolute http://127.0.0.1:PORT/%s/TOKEN", kind, raw, kind)
		}
	}

	var out syncBuffer
	if err := remoteCommand(ctx, viaSPDY, exec.Url, remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "once\n" {
		t.Fatalf("first session on the exec URL: %q, %v", out.String(), err)
	}
	for _, tr := range []string{viaSPDY, viaWebSocket} {
		var again syncBuffer
		err := remoteCommand(ctx, tr, exec.Url, remotecommand.StreamOptions{Stdout: &again})
		if err == nil || again.String() != "" {
			t.Errorf("second session (%s) on a used exec URL: %q, %v; want it refused", tr, again.String(), err)
		}
	}

	for _, tr := range []string{viaSPDY, viaWebSocket} {
		t.Run(tr, func(t *testing.T) {
			r, err := e.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			var out, errOut syncBuffer
			err = remoteCommand(ctx, tr, r.Url, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
			var exitErr clientexec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 {
				t.Errorf("session = %v, want exit code 7", err)
			}
			if out.String() != "out\n" || errOut.String() != "err\n" {
				t.Errorf("stdout %q stderr %q, want \"out\\n\" \"err\\n\"", out.String(), errOut.String())
			}
		})
	}
}

// TestIOPortForward: `crictl port-forward` to an httpd in a pod's network
// and to one in a host-network pod, reached with a plain HTTP client.
func TestIOPortForward(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	for _, tc := range []struct {
		name string
		host bool
	}{{"pod network", false}, {"host network", true}} {
		t.Run(tc.name, func(t *testing.T) {
			port := 8080
			pod, podID := e.startPod("pf", func(p *runtimeapi.PodSandboxConfig) {
				if tc.host {
					port = freePort(t)
					p.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
				}
			})
			page := "hello from " + tc.name + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
			cfg := containerConfig("httpd", "mkdir -p /www && echo '"+page+"' > /www/index.html && exec httpd -f -p "+strconv.Itoa(port)+" -h /www")
			ee := e.forT(t)
			id := ee.runContainer(podID, pod, cfg)
			// httpd is up when it answers inside the pod.
			deadline := time.Now().Add(15 * time.Second)
			for {
				r := ee.execSync(id, 5, "wget", "-q", "-O", "-", "http://127.0.0.1:"+strconv.Itoa(port)+"/")
				if r.ExitCode == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("httpd does not answer in the pod: %s", r.Stderr)
				}
				time.Sleep(100 * time.Millisecond)
			}

			local := freePort(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f := c.start(ctx, nil, "port-forward", podID, strconv.Itoa(local)+":"+strconv.Itoa(port))
			addr := "127.0.0.1:" + strconv.Itoa(local)
			waitText(t, f.stdout, "Forwarding from 127.0.0.1:"+strconv.Itoa(local), 15*time.Second)
			for i := range 3 {
				body, err := httpGet(addr, "/index.html")
				if err != nil || body != page+"\n" {
					t.Errorf("GET %d through crictl port-forward: %q, %v; want %q", i+1, body, err, page+"\n")
				}
			}
			// Connections at once: a stream each.
			errs := make(chan error, 8)
			for range cap(errs) {
				go func() {
					body, err := httpGet(addr, "/index.html")
					if err == nil && body != page+"\n" {
						err = errors.New("body " + strconv.Quote(body))
					}
					errs <- err
				}()
			}
			for range cap(errs) {
				if err := <-errs; err != nil {
					t.Errorf("concurrent GET through crictl port-forward: %v", err)
				}
			}
			cancel()
			f.wait(t, 10*time.Second)
		})
	}
}

// httpGet does one HTTP/1.0 GET over a new TCP connection and returns the
// body of a 200 answer.
func httpGet(addr, path string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	head, body, ok := strings.Cut(b.String(), "\r\n\r\n")
	if !ok || !strings.HasPrefix(head, "HTTP/1.") || !strings.Contains(strings.SplitN(head, "\r\n", 2)[0], " 200 ") {
		return "", errors.New("bad answer: " + clip(b.String()))
	}
	return body, nil
}
