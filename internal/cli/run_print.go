package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/manager"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// printer writes events, logs and the final summary to one output, whole
// lines at a time; on a terminal it keeps a progress line while an image
// pulls.
type printer struct {
	mu   sync.Mutex
	out  io.Writer
	tty  bool
	line bool // a progress line is showing
}

func newPrinter(out io.Writer) *printer {
	p := &printer{out: out}
	if f, ok := out.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.tty = err == nil
	}
	return p
}

// event prints one event as `kubectl describe` lists them: type, reason,
// object, message.
func (p *printer) event(e manager.Event) {
	p.write(fmt.Sprintf("%s  %-7s  %-20s %-28s %s\n", e.Time.Format("15:04:05"), e.Type, e.Reason, e.Object, e.Message))
}

// progress shows how long a pull has run; the CRI reports no bytes.
func (p *printer) progress(image string, elapsed time.Duration) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "\r\033[KPulling %s ... %s", image, elapsed.Round(time.Second))
	p.line = true
}

func (p *printer) write(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.line {
		fmt.Fprint(p.out, "\r\033[K")
		p.line = false
	}
	fmt.Fprint(p.out, s)
}

// logs is where the manager writes container output, already prefixed.
func (p *printer) logs() io.Writer {
	return writerFunc(func(b []byte) (int, error) { p.write(string(b)); return len(b), nil })
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

// summary prints the pod's phase and each container's last state, then
// the status as `kubectl get pod -o yaml` shows it.
func (p *printer) summary(pod *corev1.Pod) {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s/%s: %s\n", pod.Namespace, pod.Name, pod.Status.Phase)
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			fmt.Fprintf(&b, "  %s: %s (restarts: %d)\n", s.Name, stateText(s.State), s.RestartCount)
		}
	}
	if y, err := yaml.Marshal(struct {
		Status corev1.PodStatus `json:"status"`
	}{pod.Status}); err == nil {
		b.Write(y)
	}
	p.write(b.String())
}

func stateText(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running"
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated (%s, exit code %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	case s.Waiting != nil:
		return "Waiting (" + s.Waiting.Reason + ")"
	}
	return "Unknown"
}
