package containerlog

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// The CRI log format, as the kubelet reads it (pkg/kubelet/kuberuntime/logs):
//
//	<RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>\n
//
// F closes a line; P is a piece of a longer line whose rest follows in
// later records of the same stream.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"

	tagPartial = 'P'
	tagFull    = 'F'

	// MaxRecordText is the most text one record carries; longer lines are
	// split into P records of this size followed by the rest (F). It is
	// also Docker's json-file message size, so a Docker message is one
	// record.
	MaxRecordText = 16 * 1024
)

// Record is one line of a CRI log file.
type Record struct {
	Time    time.Time
	Stream  string
	Partial bool
	// Text is the record's text without the trailing newline. ParseRecord
	// returns a slice of its input.
	Text []byte
}

// AppendRecord appends one record to buf. text is written as is: it must not
// contain '\n' and should be at most MaxRecordText long (AppendLine splits).
func AppendRecord(buf []byte, ts time.Time, stream string, partial bool, text []byte) []byte {
	buf = ts.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	tag := byte(tagFull)
	if partial {
		tag = tagPartial
	}
	buf = append(buf, ' ', tag, ' ')
	buf = append(buf, text...)
	return append(buf, '\n')
}

// AppendLine appends text (without its newline) as records of at most
// MaxRecordText bytes: P records for all pieces but the last, which is F
// unless partial says the line goes on in a later call. An empty partial
// text appends nothing; an empty complete line is one empty F record.
func AppendLine(buf []byte, ts time.Time, stream string, text []byte, partial bool) []byte {
	for piece, last := range pieces(text, partial) {
		buf = AppendRecord(buf, ts, stream, partial || !last, piece)
	}
	return buf
}

// pieces yields text in chunks of at most MaxRecordText bytes and whether
// each is the last one. A complete empty line yields one empty chunk.
func pieces(text []byte, partial bool) func(yield func([]byte, bool) bool) {
	return func(yield func([]byte, bool) bool) {
		if len(text) == 0 {
			if !partial {
				yield(text, true)
			}
			return
		}
		for len(text) > 0 {
			n := min(len(text), MaxRecordText)
			if !yield(text[:n], n == len(text)) {
				return
			}
			text = text[n:]
		}
	}
}

// ErrMalformedRecord is returned by ParseRecord for a line that is not a
// CRI log record.
var ErrMalformedRecord = errors.New("malformed CRI log record")

// ParseRecord parses one line of a CRI log file; a trailing "\n" is
// optional. Tags after the P/F flag (the format allows "F:x") are ignored.
func ParseRecord(line []byte) (Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return Record{}, fmt.Errorf("%w: no timestamp delimiter", ErrMalformedRecord)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Record{}, fmt.Errorf("%w: timestamp: %w", ErrMalformedRecord, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return Record{}, fmt.Errorf("%w: no stream delimiter", ErrMalformedRecord)
	}
	r := Record{Time: t}
	switch string(stream) {
	case StreamStdout:
		r.Stream = StreamStdout
	case StreamStderr:
		r.Stream = StreamStderr
	default:
		return Record{}, fmt.Errorf("%w: unknown stream %q", ErrMalformedRecord, stream)
	}
	tags, text, _ := bytes.Cut(rest, []byte(" "))
	flag, _, _ := bytes.Cut(tags, []byte(":"))
	switch string(flag) {
	case string(tagPartial):
		r.Partial = true
	case string(tagFull):
	default:
		return Record{}, fmt.Errorf("%w: unknown tag %q", ErrMalformedRecord, tags)
	}
	r.Text = text
	return r, nil
}
