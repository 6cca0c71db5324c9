package containerlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// message is one Docker log message as ContainerLogs returns it with
// Timestamps: a piece of a line at most MaxRecordText long (json-file
// splits longer lines), marked partial when it does not end the line.
type message struct {
	stream string
	time   time.Time
	// text is the message without its timestamp and its newline; it is
	// valid until the next call to next.
	text    []byte
	partial bool
}

// messageReader reads messages from a ContainerLogs stream.
type messageReader interface {
	next() (message, error)
}

// readerSize holds a whole Docker message (16 KiB and a timestamp) with
// room to spare, so frames are parsed in place.
const readerSize = 64 * 1024

// Stream bytes of the multiplexed format (moby's stdcopy).
const (
	frameStdout    = 1
	frameStderr    = 2
	frameSystemerr = 3
	frameHeaderLen = 8
)

// frameReader reads the multiplexed stream of a container without a TTY:
// frames of an 8-byte header (stream byte, three zero bytes, big-endian
// uint32 length) and a payload of one message. Reading frame by frame keeps
// the order of stdout and stderr as Docker stored it.
type frameReader struct {
	br      *bufio.Reader
	discard int    // payload bytes still in br from the last frame
	big     []byte // payloads larger than br's buffer
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, readerSize)}
}

func (r *frameReader) next() (message, error) {
	if r.discard > 0 {
		if _, err := r.br.Discard(r.discard); err != nil {
			return message{}, err
		}
		r.discard = 0
	}
	hdr, err := r.br.Peek(frameHeaderLen)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
		return message{}, fmt.Errorf("log stream: bad frame header % x", hdr)
	}
	kind := hdr[0]
	n := int(binary.BigEndian.Uint32(hdr[4:]))
	if _, err := r.br.Discard(frameHeaderLen); err != nil {
		return message{}, err
	}
	var payload []byte
	if n <= r.br.Size() {
		payload, err = r.br.Peek(n)
		r.discard = len(payload)
	} else {
		if cap(r.big) < n {
			r.big = make([]byte, n)
		}
		payload = r.big[:n]
		_, err = io.ReadFull(r.br, payload)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	m := message{}
	switch kind {
	case frameStdout:
		m.stream = StreamStdout
	case frameStderr:
		m.stream = StreamStderr
	case frameSystemerr:
		return message{}, fmt.Errorf("log stream: docker: %s", bytes.TrimSpace(payload))
	default:
		return message{}, fmt.Errorf("log stream: unknown stream %d", kind)
	}
	if err := m.parse(payload); err != nil {
		return message{}, err
	}
	return m, nil
}

// parse splits "<timestamp> <text>" and the newline off payload.
func (m *message) parse(payload []byte) error {
	ts, text, ok := bytes.Cut(payload, []byte(" "))
	if !ok {
		return fmt.Errorf("log stream: message without timestamp")
	}
	t, err := parseDockerTime(ts)
	if err != nil {
		return fmt.Errorf("log stream: %w", err)
	}
	m.time = t
	if n := len(text); n > 0 && text[n-1] == '\n' {
		m.text, m.partial = text[:n-1], false
	} else {
		m.text, m.partial = text, true
	}
	return nil
}

// rawReader reads the stream of a container with a TTY, which Docker sends
// without frames: "<timestamp> <text>" messages back to back. A message ends
// at its newline or, for the pieces json-file cut from a long line, after
// MaxRecordText bytes; a trailing "\r" (the TTY's) goes with the newline.
// Partial pieces of another size (only the last output before exit) can not
// be told apart from the text that follows them.
type rawReader struct {
	br      *bufio.Reader
	discard int
}

func newRawReader(r io.Reader) *rawReader {
	return &rawReader{br: bufio.NewReaderSize(r, readerSize)}
}

func (r *rawReader) next() (message, error) {
	if r.discard > 0 {
		if _, err := r.br.Discard(r.discard); err != nil {
			return message{}, err
		}
		r.discard = 0
	}
	// Wait for a whole message, taking what has arrived so far: a follow
	// stream must not block for bytes that are not coming yet.
	for want := 1; ; {
		_, err := r.br.Peek(want)
		buf, _ := r.br.Peek(r.br.Buffered())
		m, n, ok, perr := parseRaw(buf, err != nil)
		if perr != nil {
			return message{}, perr
		}
		if ok {
			r.discard = n
			return m, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return message{}, err
		}
		want = len(buf) + 1
	}
}

// maxTimestamp bounds the timestamp at the start of a raw message.
const maxTimestamp = 40

// parseRaw parses the first raw message in buf and returns it with the
// number of bytes it takes. ok is false when buf does not hold all of it
// yet; at eof, what there is ends the stream as a partial message.
func parseRaw(buf []byte, eof bool) (m message, n int, ok bool, err error) {
	sp := bytes.IndexByte(buf[:min(len(buf), maxTimestamp)], ' ')
	if sp < 0 {
		if len(buf) >= maxTimestamp {
			return message{}, 0, false, fmt.Errorf("log stream: message without timestamp")
		}
		return message{}, 0, false, nil
	}
	t, err := parseDockerTime(buf[:sp])
	if err != nil {
		return message{}, 0, false, fmt.Errorf("log stream: %w", err)
	}
	m = message{stream: StreamStdout, time: t}
	text := buf[sp+1:]
	if nl := bytes.IndexByte(text[:min(len(text), MaxRecordText)], '\n'); nl >= 0 {
		m.text = bytes.TrimSuffix(text[:nl], []byte("\r"))
		return m, sp + 1 + nl + 1, true, nil
	}
	if len(text) >= MaxRecordText || (eof && len(text) > 0) {
		k := min(len(text), MaxRecordText)
		m.text, m.partial = text[:k], true
		return m, sp + 1 + k, true, nil
	}
	return message{}, 0, false, nil
}

// parseDockerTime parses Docker's log timestamps, RFC3339 with nanoseconds
// (jsonmessage.RFC3339NanoFixed: always nine digits).
func parseDockerTime(b []byte) (time.Time, error) {
	if t, ok := parseFixedUTC(b); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", b, err)
	}
	return t.UTC(), nil
}

// parseFixedUTC is the fast path for "2006-01-02T15:04:05.000000000Z", the
// form Docker writes (it stores times in UTC).
func parseFixedUTC(b []byte) (time.Time, bool) {
	if len(b) != 30 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' ||
		b[16] != ':' || b[19] != '.' || b[29] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	var v [7]int
	for i, f := range [7][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}, {20, 29}} {
		n, ok := num(b[f[0]:f[1]])
		if !ok {
			return time.Time{}, false
		}
		v[i] = n
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return time.Time{}, false
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6], time.UTC)
	if t.Day() != v[2] { // Feb 30 and the like: let time.Parse reject it
		return time.Time{}, false
	}
	return t, true
}
