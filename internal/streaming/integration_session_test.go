package streaming_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/streaming"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sizeQueue hands the client's terminal sizes to client-go.
type sizeQueue chan *remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize { return <-q }

func TestExec(t *testing.T) {
	d := requireDocker(t)
	s := startServer(t, d, nil)
	id := runContainer(t, d, []string{"sleep", "3600"}, nil)

	for i, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx := t.Context()

			t.Run("stdout", func(t *testing.T) {
				var out, errOut syncBuffer
				u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "hi"}, Stdout: true, Stderr: true})
				if err := stream(ctx, tr, u, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}); err != nil {
					t.Fatal(err)
				}
				if out.String() != "hi\n" || errOut.String() != "" {
					t.Errorf("stdout %q, stderr %q; want \"hi\\n\", \"\"", out.String(), errOut.String())
				}
			})

			t.Run("exit code", func(t *testing.T) {
				var out, errOut syncBuffer
				u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, Stdout: true, Stderr: true})
				err := stream(ctx, tr, u, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
				var exitErr clientexec.ExitError
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 {
					t.Fatalf("stream = %v, want exit code 7", err)
				}
				if out.String() != "out\n" || errOut.String() != "err\n" {
					t.Errorf("stdout %q, stderr %q; want \"out\\n\", \"err\\n\"", out.String(), errOut.String())
				}
			})

			t.Run("stdin to EOF", func(t *testing.T) {
				var out syncBuffer
				in := strings.Repeat("hello, cat\n", 1000)
				u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true})
				done := make(chan error, 1)
				go func() {
					done <- stream(ctx, tr, u, remotecommand.StreamOptions{Stdin: strings.NewReader(in), Stdout: &out, Stderr: io.Discard})
				}()
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("cat did not end: stdin's EOF did not reach it")
				}
				if out.String() != in {
					t.Errorf("cat echoed %d bytes, want the %d sent", len(out.String()), len(in))
				}
			})

			t.Run("tty resize", func(t *testing.T) {
				var out syncBuffer
				sizes := make(sizeQueue, 1)
				sizes <- &remotecommand.TerminalSize{Width: 111, Height: 33}
				close(sizes)
				script := `for i in $(seq 100); do [ "$(stty size 2>/dev/null)" = "33 111" ] && break; sleep 0.05; done; stty size`
				u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", script}, Tty: true, Stdout: true})
				if err := stream(ctx, tr, u, remotecommand.StreamOptions{Stdout: &out, Tty: true, TerminalSizeQueue: sizes}); err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(out.String()); got != "33 111" {
					t.Errorf("stty size = %q, want \"33 111\"", got)
				}
			})

			t.Run("single use", func(t *testing.T) {
				u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
				if err := stream(ctx, tr, u, remotecommand.StreamOptions{Stdout: io.Discard}); err != nil {
					t.Fatalf("first use: %v", err)
				}
				if err := stream(ctx, tr, u, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
					t.Fatal("a second use of the URL succeeded")
				}
			})

			t.Run("client goes away", func(t *testing.T) {
				cmdline := fmt.Sprintf("sleep %d", 1010+i)
				u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: strings.Fields(cmdline), Stdout: true})
				cctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- stream(cctx, tr, u, remotecommand.StreamOptions{Stdout: io.Discard}) }()
				waitRunning(t, d, id, cmdline)
				cancel()
				<-done
				// The session's end kills the command.
				waitGone(t, d, id, cmdline, 5*time.Second)
			})
		})
	}
}

// waitRunning waits until a process in the container runs cmdline.
func waitRunning(t *testing.T, d *client.Client, containerID, cmdline string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(processes(t, d, containerID), cmdline) {
		if time.Now().After(deadline) {
			t.Fatalf("%q did not start", cmdline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAttach(t *testing.T) {
	d := requireDocker(t)
	s := startServer(t, d, nil)

	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Run("stdin and tty", func(t *testing.T) {
				id := runContainer(t, d, []string{"sh"}, func(c *container.Config, _ *container.HostConfig) {
					c.OpenStdin, c.Tty = true, true
				})
				resp, err := s.GetAttach(&runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Tty: true})
				if err != nil {
					t.Fatal(err)
				}
				inR, inW := io.Pipe()
				var out syncBuffer
				done := make(chan error, 1)
				go func() {
					done <- stream(t.Context(), tr, resp.Url, remotecommand.StreamOptions{Stdin: inR, Stdout: &out, Tty: true})
				}()
				io.WriteString(inW, "echo attached-$((40+2))\n")
				out.waitFor(t, "attached-42", 10*time.Second)
				io.WriteString(inW, "exit\n")
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("attach ended with %v, want nil when the container exits", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("attach did not end when the container exited")
				}
				inW.Close()
			})

			t.Run("output only", func(t *testing.T) {
				id := runContainer(t, d, []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"}, nil)
				resp, err := s.GetAttach(&runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				var out syncBuffer
				done := make(chan error, 1)
				go func() {
					done <- stream(ctx, tr, resp.Url, remotecommand.StreamOptions{Stdin: strings.NewReader("dropped\n"), Stdout: &out, Stderr: io.Discard})
				}()
				out.waitFor(t, "tick", 10*time.Second)
				cancel()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("attach did not end when the client left")
				}
				res, err := d.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
				if err != nil || !res.Container.State.Running {
					t.Errorf("container not running after the attach ended (%v)", err)
				}
			})
		})
	}
}

// TestStopEndsSessions: Stop ends a session in progress and what it ran.
func TestStopEndsSessions(t *testing.T) {
	d := requireDocker(t)
	id := runContainer(t, d, []string{"sleep", "3600"}, nil)
	for i, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			s, err := streaming.New(streaming.Options{Docker: d, Sandbox: resolver(d)})
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve() }()
			cmdline := fmt.Sprintf("sleep %d", 1020+i)
			u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: strings.Fields(cmdline), Stdout: true})
			done := make(chan error, 1)
			go func() { done <- stream(t.Context(), tr, u, remotecommand.StreamOptions{Stdout: io.Discard}) }()
			waitRunning(t, d, id, cmdline)
			s.Stop()
			if err := <-served; err != nil {
				t.Errorf("Serve = %v", err)
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the client's session outlived Stop")
			}
			waitGone(t, d, id, cmdline, 5*time.Second)
		})
	}
}

func TestTLS(t *testing.T) {
	d := requireDocker(t)
	certFile, keyFile := selfSignedCert(t)
	s := startServer(t, d, func(o *streaming.Options) { o.TLSCertFile, o.TLSKeyFile = certFile, keyFile })
	id := runContainer(t, d, []string{"sleep", "3600"}, nil)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "over tls"}, Stdout: true})
			if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host != s.Addr() {
				t.Fatalf("URL %q, want https://%s/...", u, s.Addr())
			}
			var out syncBuffer
			if err := stream(t.Context(), tr, u, remotecommand.StreamOptions{Stdout: &out}); err != nil {
				t.Fatal(err)
			}
			if out.String() != "over tls\n" {
				t.Errorf("stdout %q", out.String())
			}
		})
	}
}

func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "berth streaming test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
