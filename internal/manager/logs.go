package manager

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-client/pkg/logs"
)

// follow prints a container's log from since (zero: from its start),
// each line prefixed with its name, until the container exits or the run
// ends.
func (m *Manager) follow(ctx context.Context, name, containerID, path string, since time.Time) {
	m.mu.Lock()
	if m.following[containerID] {
		m.mu.Unlock()
		return
	}
	m.following[containerID] = true
	if m.followCancel == nil {
		m.followCtx, m.followCancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	fctx := m.followCtx
	m.mu.Unlock()
	m.followers.Go(func() {
		w := &prefixWriter{out: m.opts.Logs, mu: &m.logMu, prefix: []byte("[" + name + "] ")}
		opts := &logs.LogOptions{Follow: true, Since: since}
		if err := logs.ReadLogs(fctx, path, containerID, opts, m.opts.Runtime, w, w); err != nil && fctx.Err() == nil {
			m.opts.Logger.Debug("follow container log", "container", name, "error", err)
		}
		w.flush()
	})
}

// stopFollowing ends the log followers. Each ends by itself once its
// container has stopped and its log is printed; the ones still going
// after followDrain are cut.
func (m *Manager) stopFollowing() {
	done := make(chan struct{})
	go func() {
		m.followers.Wait()
		close(done)
	}()
	t := time.NewTimer(followDrain)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	m.mu.Lock()
	cancel := m.followCancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	<-done
}

const followDrain = 3 * time.Second

// prefixWriter writes whole lines, each after prefix, to a shared output.
type prefixWriter struct {
	out    io.Writer
	mu     *sync.Mutex
	prefix []byte
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *prefixWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(append(w.buf, '\n'))
		w.buf = nil
	}
}

func (w *prefixWriter) emit(line []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.out.Write(append(append([]byte{}, w.prefix...), line...))
}

// linkLegacyLog makes the kubelet's /var/log/containers symlink:
// <pod>_<namespace>_<container>-<id>.log to the container's log.
func (m *Manager) linkLegacyLog(pod *corev1.Pod, name, containerID, logPath string) {
	if m.opts.ContainerLogsDir == "" {
		return
	}
	link := legacyLogLink(m.opts.ContainerLogsDir, pod, name, containerID)
	if err := os.MkdirAll(m.opts.ContainerLogsDir, 0o755); err != nil {
		m.opts.Logger.Warn("legacy log symlink", "error", err)
		return
	}
	if err := os.Symlink(logPath, link); err != nil && !os.IsExist(err) {
		m.opts.Logger.Warn("legacy log symlink", "link", link, "error", err)
	}
}

func legacyLogLink(dir string, pod *corev1.Pod, name, containerID string) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%s_%s-%s.log", pod.Name, pod.Namespace, name, containerID))
}
