package streaming

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// muxFrame is one frame of Docker's multiplexed stream: the stream, three
// zero bytes, the big-endian length, the payload.
func muxFrame(stream stdcopy.StdType, payload string) []byte {
	frame := []byte{byte(stream), 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(frame[4:], uint32(len(payload)))
	return append(frame, payload...)
}

// hijackPair is a Docker hijacked connection whose daemon end the test
// holds: a loopback TCP connection, which can half-close.
func hijackPair(t *testing.T) (client.HijackedResponse, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	daemon := (<-accepted).(*net.TCPConn)
	t.Cleanup(func() { c.Close(); daemon.Close() })
	return client.NewHijackedResponse(c, ""), daemon
}

func TestPipeDemuxesAndHalfCloses(t *testing.T) {
	conn, daemon := hijackPair(t)
	var stdout, stderr bytes.Buffer
	s := stdio{in: strings.NewReader("to the process"), out: &stdout, errOut: &stderr}

	daemonDone := make(chan error, 1)
	go func() {
		// The daemon reads stdin to EOF (the half-close), then answers
		// multiplexed and closes.
		in, err := io.ReadAll(daemon)
		if err != nil {
			daemonDone <- err
			return
		}
		daemon.Write(muxFrame(stdcopy.Stdout, "out:"+string(in)))
		daemon.Write(muxFrame(stdcopy.Stderr, "err"))
		daemon.Write(muxFrame(stdcopy.Stdout, "|more"))
		daemonDone <- daemon.Close()
	}()
	if err := s.pipe(t.Context(), conn, discardLogger()); err != nil {
		t.Fatalf("pipe: %v", err)
	}
	if err := <-daemonDone; err != nil {
		t.Fatal(err)
	}
	if got, want := stdout.String(), "out:to the process|more"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := stderr.String(), "err"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestPipeTTYIsRaw(t *testing.T) {
	conn, daemon := hijackPair(t)
	var stdout bytes.Buffer
	sizes := make(chan remotecommand.TerminalSize)
	applied := make(chan remotecommand.TerminalSize, 4)
	first := remotecommand.TerminalSize{Width: 100, Height: 30}
	s := stdio{
		out: &stdout, tty: true, first: &first, resize: sizes,
		setSize: func(_ context.Context, size remotecommand.TerminalSize) error {
			applied <- size
			return nil
		},
	}
	go func() {
		daemon.Write([]byte("raw\x01\x00 bytes"))
		sizes <- remotecommand.TerminalSize{Width: 120, Height: 40}
		daemon.Close()
	}()
	if err := s.pipe(t.Context(), conn, discardLogger()); err != nil {
		t.Fatalf("pipe: %v", err)
	}
	if got, want := stdout.String(), "raw\x01\x00 bytes"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	close(applied)
	var got []remotecommand.TerminalSize
	for size := range applied {
		got = append(got, size)
	}
	want := []remotecommand.TerminalSize{{Width: 100, Height: 30}, {Width: 120, Height: 40}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sizes applied (-want +got):\n%s", diff)
	}
}

func TestPipeEndsWithContext(t *testing.T) {
	conn, daemon := hijackPair(t)
	ctx, cancel := context.WithCancel(t.Context())
	s := stdio{out: io.Discard}
	done := make(chan error, 1)
	go func() { done <- s.pipe(ctx, conn, discardLogger()) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("pipe = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pipe did not end with its context")
	}
	// The daemon's side sees the connection closed.
	daemon.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := daemon.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("daemon read = %v, want EOF", err)
	}
}

func TestPendingSize(t *testing.T) {
	if first, rest := pendingSize(nil); first != nil || rest != nil {
		t.Error("pendingSize(nil) found a size")
	}
	ch := make(chan remotecommand.TerminalSize, 1)
	if first, rest := pendingSize(ch); first != nil || rest == nil {
		t.Error("pendingSize of an empty channel found a size or dropped the channel")
	}
	ch <- remotecommand.TerminalSize{Width: 80, Height: 24}
	if first, _ := pendingSize(ch); first == nil || *first != (remotecommand.TerminalSize{Width: 80, Height: 24}) {
		t.Errorf("pendingSize = %v, want 80x24", first)
	}
	close(ch)
	if first, rest := pendingSize(ch); first != nil || rest != nil {
		t.Error("pendingSize of a closed channel kept it")
	}
}

func TestCapBuffer(t *testing.T) {
	b := &capBuffer{limit: 10000}
	chunk := bytes.Repeat([]byte("0123456789"), 333) // 3330 bytes
	var want []byte
	for range 5 {
		n, err := b.Write(chunk)
		if n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(chunk))
		}
		want = append(want, chunk...)
		if cap(b.buf) > b.limit {
			t.Fatalf("capacity %d over the limit %d", cap(b.buf), b.limit)
		}
	}
	if !bytes.Equal(b.Bytes(), want[:10000]) {
		t.Errorf("kept %d bytes, want the first 10000", len(b.Bytes()))
	}
	if b.dropped != int64(5*len(chunk)-10000) {
		t.Errorf("dropped %d, want %d", b.dropped, 5*len(chunk)-10000)
	}
}

func TestParsePPID(t *testing.T) {
	for stat, want := range map[string]int{
		"1234 (sleep) S 99 1234 1234 0 -1 4194560":         99,
		"77 (a) b) c) R 1 77 77 0 -1":                      1,
		"5 (name with spaces and ( parens) Z 4321 5 5 0 0": 4321,
		"garbage":   -1,
		"1 (x) S":   -1,
		"1 (x) S y": -1,
	} {
		got, ok := parsePPID([]byte(stat))
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("parsePPID(%q) = %d, want %d", stat, got, want)
		}
	}
}
