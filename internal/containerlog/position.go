package containerlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A position says where in Docker's log a copier stands: the last record it
// wrote, named by its stream, its timestamp T and how many records of that
// stream carry exactly T up to and including it (the pieces of a long line
// share one timestamp). Docker's timestamps are per-stream monotonic but
// stdout and stderr interleave out of timestamp order (by up to 17 ms here
// under load), so a resume asks Docker for everything since T minus
// reorderWindow and skips the replay up to that record, in Docker's own
// order: what follows it is exactly what is not written yet.
type position struct {
	Last   string `json:"last,omitempty"` // stream of the last record; "" when none
	Stdout mark   `json:"stdout"`
	Stderr mark   `json:"stderr"`
}

// mark is a stream's last timestamp and the number of its records at it.
type mark struct {
	Time  time.Time `json:"time"`
	Count int       `json:"count"`
}

// reorderWindow bounds how far Docker's stored order strays from timestamp
// order between stdout and stderr; a resume replays this much before T.
const reorderWindow = 2 * time.Second

func (p *position) mark(stream string) *mark {
	if stream == StreamStderr {
		return &p.Stderr
	}
	return &p.Stdout
}

// written records one more record.
func (p *position) written(ts time.Time, stream string) {
	m := p.mark(stream)
	if m.Count > 0 && m.Time.Equal(ts) {
		m.Count++
	} else {
		*m = mark{Time: ts, Count: 1}
	}
	p.Last = stream
}

// since is the ContainerLogs Since that replays the last record, in the
// "seconds.nanoseconds" form Docker takes; "" for the whole log.
func (p position) since() string {
	if p.Last == "" {
		return ""
	}
	t := p.mark(p.Last).Time.Add(-reorderWindow)
	if t.Unix() <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

const positionFile = "position"

// loadPosition reads dir/position; a missing file is the zero position.
func loadPosition(dir string) (position, error) {
	b, err := os.ReadFile(filepath.Join(dir, positionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("read position: %w", err)
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("read position %s: %w", filepath.Join(dir, positionFile), err)
	}
	return p, nil
}

// savePosition replaces dir/position atomically (write, fsync, rename).
func savePosition(dir string, p position) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	tmp, err := os.CreateTemp(dir, positionFile+".*")
	if err != nil {
		return fmt.Errorf("save position: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, positionFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save position: %w", err)
	}
	return nil
}

// tail is what a resume learns from the end of the log file.
type tail struct {
	pos position
	// open lists the streams whose count may go on in an earlier file
	// (the scan reached the start of this one while still counting).
	open map[string]bool
	// size is the length of the file's whole records; a torn last line
	// (a crash mid-write) lies beyond it.
	size int64
}

// maxScan bounds the bytes scanned back for the stream that did not write
// the last record, once that one is resolved.
const maxScan = 1 << 20

// scanTail reads f's records from the end until both streams' marks are
// known (a record of the stream with an older timestamp shows up).
func scanTail(f io.ReaderAt, size int64) (tail, error) {
	end, err := lastLineEnd(f, size)
	if err != nil {
		return tail{}, err
	}
	t := tail{size: end, open: map[string]bool{}}
	var carry []byte // a line whose start is in an earlier chunk
	off := end
	state := map[string]int{} // 0 unseen, 1 counting, 2 resolved
	var resolvedAt int64 = -1
	for off > 0 {
		n := min(int64(scanChunk), off)
		off -= n
		buf := make([]byte, n, n+int64(len(carry)))
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return tail{}, fmt.Errorf("read log tail: %w", err)
		}
		buf = append(buf, carry...)
		// Whole lines, last first; buf ends with '\n'.
		end := len(buf)
		for end > 0 {
			i := bytes.LastIndexByte(buf[:end-1], '\n')
			if i < 0 && off > 0 {
				break
			}
			line := buf[i+1 : end]
			end = i + 1
			r, err := ParseRecord(line)
			if err != nil {
				continue // not ours: skip it
			}
			if done := t.see(r, state); done {
				return t, nil
			}
			if resolvedAt < 0 && state[t.pos.Last] == 2 {
				resolvedAt = off
			}
			if resolvedAt >= 0 && resolvedAt-off > maxScan {
				return t, nil
			}
		}
		carry = buf[:end]
		if len(carry) > maxScan {
			return t, nil // no line end for a megabyte: not a CRI log
		}
	}
	for s, st := range state {
		if st == 1 {
			t.open[s] = true
		}
	}
	return t, nil
}

const scanChunk = 64 * 1024

// lastLineEnd returns the offset just past f's last '\n', 0 if none.
func lastLineEnd(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, scanChunk)
	for off := size; off > 0; {
		n := min(int64(scanChunk), off)
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read log tail: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// see takes one record, read backwards, and says whether the scan is done.
func (t *tail) see(r Record, state map[string]int) bool {
	if t.pos.Last == "" {
		t.pos.Last = r.Stream
	}
	m := t.pos.mark(r.Stream)
	switch state[r.Stream] {
	case 0:
		*m = mark{Time: r.Time, Count: 1}
		state[r.Stream] = 1
	case 1:
		if r.Time.Equal(m.Time) {
			m.Count++
		} else {
			state[r.Stream] = 2
		}
	}
	return state[StreamStdout] == 2 && state[StreamStderr] == 2
}

// resumeFrom merges the file's tail with the position saved at the last
// reopen, for a file that holds few records (or none) after a rotation.
func resumeFrom(t tail, saved position) position {
	if t.pos.Last == "" {
		return saved
	}
	p := t.pos
	for _, s := range []string{StreamStdout, StreamStderr} {
		m, old := p.mark(s), saved.mark(s)
		switch {
		case m.Count == 0:
			*m = *old
		case t.open[s] && old.Count > 0 && old.Time.Equal(m.Time):
			m.Count += old.Count
		}
	}
	return p
}
