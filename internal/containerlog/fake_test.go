package containerlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeMsg is one message of the fake's Docker log; text ends with "\n"
// unless the message is a partial piece.
type fakeMsg struct {
	stream string
	time   time.Time
	text   string
}

// fakeDocker serves one container's log like dockerd with json-file: in
// stored order, from Since (inclusive), following while the container runs.
type fakeDocker struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	msgs    []fakeMsg
	frames  [][]byte // msgs as ContainerLogs sends them
	status  container.ContainerState
	tty     bool
	gone    bool
	// cutEvery ends follow streams with an error after that many
	// messages, as a dockerd restart does.
	cutEvery int
	calls    []client.ContainerLogsOptions
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{changed: make(chan struct{}), status: container.StateRunning}
}

func (f *fakeDocker) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeDocker) add(msgs ...fakeMsg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msgs...)
	for _, m := range msgs {
		f.frames = append(f.frames, dockerFrame(nil, m, f.tty))
	}
	f.notifyLocked()
}

func (f *fakeDocker) exit() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = container.StateExited
	f.notifyLocked()
}

func (f *fakeDocker) logsCalls() []client.ContainerLogsOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]client.ContainerLogsOptions(nil), f.calls...)
}

func (f *fakeDocker) ContainerInspect(ctx context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return client.ContainerInspectResult{}, fmt.Errorf("no such container %s: %w", id, errdefs.ErrNotFound)
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{
		ID:     id,
		State:  &container.State{Status: f.status, Running: f.status == container.StateRunning},
		Config: &container.Config{Tty: f.tty},
	}}, nil
}

func (f *fakeDocker) ContainerLogs(ctx context.Context, id string, opts client.ContainerLogsOptions) (client.ContainerLogsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return nil, fmt.Errorf("no such container %s: %w", id, errdefs.ErrNotFound)
	}
	f.calls = append(f.calls, opts)
	var since time.Time
	if opts.Since != "" {
		sec, nsec, ok := strings.Cut(opts.Since, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		n, err2 := strconv.ParseInt(nsec, 10, 64)
		if !ok || len(nsec) != 9 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad since %q: %w", opts.Since, errdefs.ErrInvalidArgument)
		}
		since = time.Unix(s, n)
	}
	ctx, cancel := context.WithCancel(ctx)
	return &fakeStream{f: f, ctx: ctx, cancel: cancel, since: since, follow: opts.Follow, cutEvery: f.cutEvery}, nil
}

// fakeStream renders the log in Docker's wire format as it is read; it
// has no goroutine of its own.
type fakeStream struct {
	f        *fakeDocker
	ctx      context.Context
	cancel   context.CancelFunc
	since    time.Time
	follow   bool
	cutEvery int
	next     int // index in f.msgs
	sent     int
	pending  []byte
}

func (s *fakeStream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if err := s.ctx.Err(); err != nil {
			return 0, err
		}
		if s.cutEvery > 0 && s.sent == s.cutEvery {
			return 0, io.ErrUnexpectedEOF
		}
		s.f.mu.Lock()
		for s.next < len(s.f.msgs) && s.f.msgs[s.next].time.Before(s.since) {
			s.next++
		}
		if s.next < len(s.f.msgs) {
			s.pending = s.f.frames[s.next]
			s.next++
			s.sent++
			s.f.mu.Unlock()
			break
		}
		changed, running := s.f.changed, s.f.status == container.StateRunning
		s.f.mu.Unlock()
		if !s.follow || !running {
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-s.ctx.Done():
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *fakeStream) Close() error {
	s.cancel()
	return nil
}

// dockerFrame appends m as ContainerLogs with Timestamps sends it.
func dockerFrame(b []byte, m fakeMsg, tty bool) []byte {
	payload := m.time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " " + m.text
	if tty {
		return append(b, payload...)
	}
	var hdr [8]byte
	hdr[0] = frameStdout
	if m.stream == StreamStderr {
		hdr[0] = frameStderr
	}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	b = append(b, hdr[:]...)
	return append(b, payload...)
}

// line is a reassembled log line: its records' texts joined.
type line struct {
	stream string
	text   string
	// partial: the log ended before the line did.
	partial bool
}

// readLines reassembles the lines of CRI log files read in order, per
// stream, checking that every line of them is a record.
func readLines(t *testing.T, paths ...string) []line {
	t.Helper()
	var out []line
	open := map[string]*bytes.Buffer{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s: does not end with a newline", p)
		}
		for l := range bytes.Lines(b) {
			r, err := ParseRecord(l)
			if err != nil {
				t.Fatalf("%s: %q: %v", p, l, err)
			}
			buf := open[r.Stream]
			if buf == nil {
				buf = &bytes.Buffer{}
				open[r.Stream] = buf
			}
			buf.Write(r.Text)
			if !r.Partial {
				out = append(out, line{stream: r.Stream, text: buf.String()})
				buf.Reset()
			}
		}
	}
	for _, s := range []string{StreamStdout, StreamStderr} {
		if buf := open[s]; buf != nil && buf.Len() > 0 {
			out = append(out, line{stream: s, text: buf.String(), partial: true})
		}
	}
	return out
}

// wantLines is what readLines should give for the fake's messages.
func wantLines(msgs []fakeMsg) []line {
	var out []line
	open := map[string]string{}
	for _, m := range msgs {
		if text, ok := strings.CutSuffix(m.text, "\n"); ok {
			out = append(out, line{stream: m.stream, text: open[m.stream] + text})
			open[m.stream] = ""
		} else {
			open[m.stream] += m.text
		}
	}
	for _, s := range []string{StreamStdout, StreamStderr} {
		if open[s] != "" {
			out = append(out, line{stream: s, text: open[s], partial: true})
		}
	}
	return out
}
