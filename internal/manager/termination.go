package manager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-client/pkg/logs"
)

// Limits of a termination message, as the kubelet's: the file is read up
// to 4 KiB; the log fallback takes the last 80 lines, at most 2 KiB.
const (
	maxTerminationMessage = 4096
	fallbackLines         = 80
	fallbackBytes         = 2048
)

// terminationMessage is what an exited container left at its
// terminationMessagePath, or, under FallbackToLogsOnError, the tail of its
// log when it failed without one.
func (m *Manager) terminationMessage(pod *corev1.Pod, c *corev1.Container, cs *containerStatus) string {
	if c == nil {
		return ""
	}
	path := terminationLogPath(pod, cs.Name, cs.Attempt, m.configOptions())
	if f, err := os.Open(path); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, maxTerminationMessage))
		f.Close()
		if len(b) > 0 {
			return string(b)
		}
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || cs.ExitCode == 0 {
		return ""
	}
	logPath := filepath.Join(m.opts.PodLogsDir, podLogDirName(pod), containerLogPath(cs.Name, cs.Attempt))
	tail, limit := int64(fallbackLines), int64(fallbackBytes)
	var buf bytes.Buffer
	err := logs.ReadLogs(context.Background(), logPath, cs.ID, &logs.LogOptions{TailLines: &tail, LimitBytes: &limit}, m.opts.Runtime, &buf, &buf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.opts.Logger.Debug("termination message from log", "container", cs.Name, "error", err)
	}
	return buf.String()
}
