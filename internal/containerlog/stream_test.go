package containerlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// got is a message as the tests compare it.
type got struct {
	Stream  string
	Time    time.Time
	Text    string
	Partial bool
}

func readAll(t *testing.T, r messageReader) ([]got, error) {
	t.Helper()
	var out []got
	for {
		m, err := r.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, got{m.stream, m.time, string(m.text), m.partial})
	}
}

func TestFrameReader(t *testing.T) {
	long := strings.Repeat("x", MaxRecordText)
	msgs := []fakeMsg{
		{StreamStdout, ts0, "first\n"},
		{StreamStderr, ts0.Add(time.Nanosecond), "err\n"},
		{StreamStdout, ts0.Add(2), long},    // a 16 KiB piece of a long line
		{StreamStdout, ts0.Add(2), "end\n"}, // the rest, same timestamp
		{StreamStdout, ts0.Add(3), "bin\x00\xff\xfe\x1b[0m\r\n"},
		{StreamStdout, ts0.Add(4), "\n"},
		{StreamStdout, ts0.Add(5), " spaced  text \n"},
		{StreamStderr, ts0.Add(6), "no newline at exit"},
	}
	var stream []byte
	for _, m := range msgs {
		stream = dockerFrame(stream, m, false)
	}
	want := []got{
		{StreamStdout, ts0, "first", false},
		{StreamStderr, ts0.Add(1), "err", false},
		{StreamStdout, ts0.Add(2), long, true},
		{StreamStdout, ts0.Add(2), "end", false},
		{StreamStdout, ts0.Add(3), "bin\x00\xff\xfe\x1b[0m\r", false},
		{StreamStdout, ts0.Add(4), "", false},
		{StreamStdout, ts0.Add(5), " spaced  text ", false},
		{StreamStderr, ts0.Add(6), "no newline at exit", true},
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := readAll(t, newFrameReader(r))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, out); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFrameReaderLargeFrame(t *testing.T) {
	// Larger than the reader's buffer: another driver, or a newer Docker.
	text := strings.Repeat("y", 3*readerSize)
	stream := dockerFrame(nil, fakeMsg{StreamStdout, ts0, text + "\n"}, false)
	stream = dockerFrame(stream, fakeMsg{StreamStdout, ts0.Add(1), "after\n"}, false)
	out, err := readAll(t, newFrameReader(bytes.NewReader(stream)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Text != text || out[1].Text != "after" {
		t.Errorf("got %d messages", len(out))
	}
}

func TestFrameReaderErrors(t *testing.T) {
	good := dockerFrame(nil, fakeMsg{StreamStdout, ts0, "ok\n"}, false)
	good = good[:len(good):len(good)] // every append below copies
	frame := func(kind byte, payload string) []byte {
		b := []byte{kind, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
		return append(b, payload...)
	}
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"truncated header", append(good, 1, 0, 0), "unexpected EOF"},
		{"truncated payload", append(good, good[:len(good)-2]...), "unexpected EOF"},
		{"bad header", append(good, frame(1, "x")[:1]...), "unexpected EOF"},
		{"nonzero padding", append(good, 1, 1, 0, 0, 0, 0, 0, 0), "bad frame header"},
		{"system error", append(good, frame(3, "boom\n")...), "docker: boom"},
		{"stdin", append(good, frame(0, "2026-11-26T21:35:18.730708311Z x")...), "unknown stream"},
		{"no timestamp", append(good, frame(1, "hello")...), "without timestamp"},
		{"bad timestamp", append(good, frame(1, "hello world")...), "timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := readAll(t, newFrameReader(bytes.NewReader(tc.stream)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if len(out) != 1 || out[0].Text != "ok" {
				t.Errorf("messages before the error = %+v", out)
			}
		})
	}
}

// A follow stream delivers a message and then waits: the reader must
// return the message without waiting for more bytes.
func TestReadersDoNotWaitForMore(t *testing.T) {
	for _, tty := range []bool{false, true} {
		pr, pw := io.Pipe()
		var r messageReader = newFrameReader(pr)
		if tty {
			r = newRawReader(pr)
		}
		go pw.Write(dockerFrame(nil, fakeMsg{StreamStdout, ts0, "one\n"}, tty))
		done := make(chan got)
		go func() {
			m, err := r.next()
			if err != nil {
				t.Error(err)
			}
			done <- got{m.stream, m.time, string(m.text), m.partial}
		}()
		select {
		case m := <-done:
			if m.Text != "one" {
				t.Errorf("tty=%v: got %q", tty, m.Text)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("tty=%v: reader blocked on a complete message", tty)
		}
		pw.Close()
	}
}

func TestRawReader(t *testing.T) {
	long := strings.Repeat("c", MaxRecordText)
	var stream []byte
	for _, m := range []fakeMsg{
		{StreamStdout, ts0, "hi\r\n"},
		{StreamStdout, ts0.Add(1), long}, // json-file's 16 KiB piece
		{StreamStdout, ts0.Add(1), "cc\r\n"},
		{StreamStdout, ts0.Add(2), "bin\x00\xff\r\n"},
		{StreamStdout, ts0.Add(3), "\r\n"},
		{StreamStdout, ts0.Add(4), "last"},
	} {
		stream = dockerFrame(stream, m, true)
	}
	want := []got{
		{StreamStdout, ts0, "hi", false},
		{StreamStdout, ts0.Add(1), long, true},
		{StreamStdout, ts0.Add(1), "cc", false},
		{StreamStdout, ts0.Add(2), "bin\x00\xff", false},
		{StreamStdout, ts0.Add(3), "", false},
		{StreamStdout, ts0.Add(4), "last", true},
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := readAll(t, newRawReader(r))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, out); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := readAll(t, newRawReader(strings.NewReader(strings.Repeat("z", 100)))); err == nil {
		t.Error("no error for a stream without timestamps")
	}
}
