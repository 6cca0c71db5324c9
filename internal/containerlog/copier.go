package containerlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

const (
	// flushDelay bounds how long a record waits in the buffer.
	flushDelay = 50 * time.Millisecond
	writerSize = 64 * 1024

	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// copier follows one container's Docker log into its CRI log file.
type copier struct {
	docker Source
	id     string
	path   string
	dir    string // StateDir/<id>
	log    *slog.Logger
	remove func(*copier)

	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // open done; startErr set
	done   chan struct{} // goroutine ended, file closed

	startErr error

	// Owned by the goroutine: the record a replay must pass before
	// writing (the last one written when the stream was opened).
	skipping bool
	target   position
	seen     int

	mu     sync.Mutex // guards what follows; held for each whole record
	f      *os.File
	w      *bufio.Writer
	pos    position // the last record written
	closed bool
	armed  bool
	timer  *time.Timer
}

func newCopier(m *Manager, id, path string) *copier {
	c := &copier{
		docker: m.docker,
		id:     id,
		path:   path,
		dir:    filepath.Join(m.stateDir, id),
		log:    m.log.With("container", id),
		remove: m.remove,
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(m.ctx)
	return c
}

// open opens the file and finds where to resume: after the last record the
// file holds or, for an empty file, at the position saved when it was
// reopened; with neither, at the start of Docker's log.
func (c *copier) open() error {
	f, err := openLockedLog(c.path)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		var t tail
		if t, err = scanTail(f, st.Size()); err == nil {
			if t.size < st.Size() {
				c.log.Warn("dropping a torn last line of the container log", "path", c.path, "bytes", st.Size()-t.size)
				err = f.Truncate(t.size)
			}
			saved, perr := loadPosition(c.dir)
			if perr != nil {
				c.log.Warn("ignoring the saved log position", "error", perr)
			}
			c.pos = resumeFrom(t, saved)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("log path %q: %w", c.path, err)
	}
	c.f = f
	c.w = bufio.NewWriterSize(f, writerSize)
	c.timer = time.AfterFunc(time.Hour, c.flushTimed)
	c.timer.Stop()
	return nil
}

// run follows Docker's log until the container's log ends or the copier
// is stopped. A stream that breaks while the container runs (dockerd
// restarted) is opened again after the last record written.
func (c *copier) run() {
	defer close(c.done)
	defer c.remove(c)
	defer c.finish()
	backoff := minBackoff
	for c.ctx.Err() == nil {
		live, tty, err := c.inspect()
		if errdefs.IsNotFound(err) {
			c.log.Debug("container gone: log copy ends")
			return
		}
		if err == nil {
			var n int
			n, err = c.copyLogs(tty, live)
			var werr writeError
			switch {
			case c.ctx.Err() != nil:
				return
			case errors.As(err, &werr):
				c.log.Error("container log copy stops", "error", err)
				return
			case err == nil && !live:
				return // a stopped container's log, read to its end
			}
			if n > 0 {
				backoff = minBackoff
			}
			if err == nil && n > 0 {
				// The follow stream ended: the container stopped, or
				// dockerd did. Docker 20.10 may end it before the last
				// message (seen with a final line without newline): the
				// next turn copies the rest without follow.
				continue
			}
		}
		if err != nil {
			c.log.Warn("container log stream interrupted; retrying", "error", err, "backoff", backoff)
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// inspect says whether the container may still write (live) and whether
// it has a TTY (its log stream is then not multiplexed).
func (c *copier) inspect() (live, tty bool, err error) {
	res, err := c.docker.ContainerInspect(c.ctx, c.id, client.ContainerInspectOptions{})
	if err != nil {
		return false, false, fmt.Errorf("inspect container %s: %w", c.id, err)
	}
	if cfg := res.Container.Config; cfg != nil {
		tty = cfg.Tty
	}
	if st := res.Container.State; st != nil {
		switch st.Status {
		case container.StateExited, container.StateDead, container.StateRemoving:
		default:
			live = true
		}
	}
	return live, tty, nil
}

// writeError is a failure to write the log file, as opposed to one of the
// stream: the copier stops (the file keeps its position for a resume).
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// copyLogs copies one ContainerLogs stream to the file, from the last
// record written on, and returns the number of records written; nil at the
// stream's clean end.
func (c *copier) copyLogs(tty, follow bool) (int, error) {
	c.mu.Lock()
	c.target = c.pos
	c.mu.Unlock()
	c.skipping, c.seen = c.target.Last != "", 0

	rc, err := c.docker.ContainerLogs(c.ctx, c.id, client.ContainerLogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Timestamps: true,
		Follow:     follow,
		Since:      c.target.since(),
	})
	if err != nil {
		return 0, fmt.Errorf("logs of container %s: %w", c.id, err)
	}
	defer rc.Close()
	var r messageReader
	if tty {
		r = newRawReader(rc)
	} else {
		r = newFrameReader(rc)
	}
	n := 0
	for {
		m, err := r.next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("logs of container %s: %w", c.id, err)
		}
		k, err := c.write(m)
		n += k
		if err != nil {
			return n, writeError{fmt.Errorf("log of container %s: write %s: %w", c.id, c.path, err)}
		}
	}
}

// write appends m's records, leaving out those the replay repeats.
func (c *copier) write(m message) (int, error) {
	n := 0
	for piece, last := range pieces(m.text, m.partial) {
		if !c.skipping && c.replayed(m.time, m.stream) {
			// Following its log across a rotation, Docker sends again
			// some of what it sent: skip up to the last record written,
			// as a resume does.
			c.mu.Lock()
			c.target = c.pos
			c.mu.Unlock()
			c.skipping, c.seen = true, 0
		}
		if c.skipping && c.skip(m.time, m.stream) {
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return n, os.ErrClosed
		}
		b := AppendRecord(c.w.AvailableBuffer(), m.time, m.stream, m.partial || !last, piece)
		_, err := c.w.Write(b)
		if err == nil {
			c.pos.written(m.time, m.stream)
			if !c.armed {
				c.armed = true
				c.timer.Reset(flushDelay)
			}
		}
		c.mu.Unlock()
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// replayed: a record older than the last one written of its stream,
// whose timestamps only grow in Docker's log, was written already.
func (c *copier) replayed(ts time.Time, stream string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.pos.mark(stream)
	return m.Count > 0 && ts.Before(m.Time)
}

// skip says whether a replayed record was written already: every record
// up to the target, the target's stream counting its records at the
// target's timestamp. Records of the other stream at or before it in
// Docker's order are skipped whatever their timestamp.
func (c *copier) skip(ts time.Time, stream string) bool {
	if stream != c.target.Last {
		return true
	}
	t := c.target.mark(stream)
	switch {
	case ts.Equal(t.Time):
		c.seen++
		if c.seen >= t.Count {
			c.skipping = false
		}
		return true
	case ts.After(t.Time):
		// Docker no longer holds the last record written (its log was
		// cut): go on from the first newer one.
		c.log.Warn("last copied record not found in the Docker log; resuming after it by time",
			"time", t.Time, "stream", stream, "found", c.seen, "want", t.Count)
		c.skipping = false
		return false
	}
	return true
}

func (c *copier) flushTimed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	if c.closed {
		return
	}
	if err := c.w.Flush(); err != nil {
		c.log.Error("flush container log", "path", c.path, "error", err)
	}
}

// reopen swaps the file for a new one at the same path, between records.
func (c *copier) reopen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("reopen log of container %s: container is not running: %w", c.id, errdefs.ErrFailedPrecondition)
	}
	// Nothing renamed it: the path is still the file being written, and
	// there is nothing to swap (a second lock on it would fail).
	if cur, err := c.f.Stat(); err == nil {
		if at, err := os.Lstat(c.path); err == nil && os.SameFile(cur, at) {
			return nil
		}
	}
	f, err := openLockedLog(c.path)
	if err != nil {
		return fmt.Errorf("reopen log of container %s: %w", c.id, err)
	}
	if err := c.w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("reopen log of container %s: flush %s: %w", c.id, c.path, err)
	}
	// The new file is empty: a resume from it needs the position.
	if err := savePosition(c.dir, c.pos); err != nil {
		f.Close()
		return fmt.Errorf("reopen log of container %s: %w", c.id, err)
	}
	old := c.f
	c.f = f
	c.w.Reset(f)
	if err := old.Close(); err != nil {
		c.log.Warn("close rotated container log", "error", err)
	}
	return nil
}

// finish flushes and closes the file.
func (c *copier) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.timer.Stop()
	if err := c.w.Flush(); err != nil {
		c.log.Error("flush container log", "path", c.path, "error", err)
	}
	if err := c.f.Close(); err != nil {
		c.log.Error("close container log", "path", c.path, "error", err)
	}
	c.log.Debug("container log copy ended", "path", c.path)
}
