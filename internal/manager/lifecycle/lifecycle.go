// Package lifecycle runs a container's postStart and preStop handlers as
// the kubelet does (pkg/kubelet/lifecycle/handlers.go): exec through the
// CRI's ExecSync, httpGet to the pod, sleep. tcpSocket is refused, as the
// kubelet refuses it: the API keeps the field only for compatibility.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/manager/handler"
	corev1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
)

// Options configure a Runner.
type Options struct {
	// Runtime runs exec handlers. Required.
	Runtime internalapi.RuntimeService
	// HTTPClient sends httpGet handlers; default handler.NewHTTPClient
	// over Dialer (no proxy, TLS not verified, same-host redirects only).
	HTTPClient *http.Client
	// Dialer reaches the pod for the default HTTPClient; default net.Dialer.
	Dialer handler.DialFunc
	// FailOnHTTPStatus makes an httpGet handler fail on a status outside
	// 200-399. The kubelet does not look at the status at all (only a
	// failed request fails the hook, kubernetes#56963), so neither do we
	// unless asked.
	FailOnHTTPStatus bool
	// Event, when set, receives the kubelet's warning events that are not
	// the hook's own failure: "LifecycleHTTPFallback".
	Event func(pod *corev1.Pod, reason, message string)
}

// Runner runs lifecycle handlers.
type Runner struct {
	rt         internalapi.RuntimeService
	client     *http.Client
	failStatus bool
	event      func(pod *corev1.Pod, reason, message string)
}

// New returns a Runner.
func New(opts Options) (*Runner, error) {
	if opts.Runtime == nil {
		return nil, errors.New("lifecycle: Options.Runtime is required")
	}
	client := opts.HTTPClient
	if client == nil {
		client = handler.NewHTTPClient(opts.Dialer)
	}
	return &Runner{rt: opts.Runtime, client: client, failStatus: opts.FailOnHTTPStatus, event: opts.Event}, nil
}

// Run executes h for container c of pod. timeout bounds the handler when
// positive (the kubelet passes none for postStart; for preStop the caller
// passes what is left of the grace period); ctx ends it in any case.
//
// On failure msg is what the kubelet puts after "message:" (the exec's
// combined output, or the HTTP status when FailOnHTTPStatus) and err the
// cause; Message turns them into the FailedPostStartHook /
// FailedPreStopHook event text. Exec and HTTP errors are returned as the
// runtime and net/http give them, unwrapped, because the kubelet's event
// text quotes them as they are (they already name the command or URL).
func (r *Runner) Run(ctx context.Context, pod *corev1.Pod, podIP string, c *corev1.Container, containerID string, h *corev1.LifecycleHandler, timeout time.Duration) (msg string, err error) {
	if err := check(h); err != nil {
		return "", err
	}
	switch {
	case h.Exec != nil:
		// Exec gets the timeout as ExecSync's own, so the runtime stops
		// the command, not only our wait.
		stdout, stderr, err := r.rt.ExecSync(ctx, containerID, h.Exec.Command, timeout)
		if err != nil {
			return string(handler.CombinedOutput(stdout, stderr)), err
		}
		return "", nil
	case h.HTTPGet != nil:
		ctx, cancel := withTimeout(ctx, timeout)
		defer cancel()
		return r.runHTTP(ctx, pod, podIP, c, h.HTTPGet)
	default:
		ctx, cancel := withTimeout(ctx, timeout)
		defer cancel()
		return "", sleep(ctx, h.Sleep.Seconds)
	}
}

// check refuses a handler the kubelet would not run, naming the field.
func check(h *corev1.LifecycleHandler) error {
	if h == nil {
		return errors.New("lifecycle handler is nil")
	}
	var set []string
	if h.Exec != nil {
		set = append(set, "exec")
	}
	if h.HTTPGet != nil {
		set = append(set, "httpGet")
	}
	if h.TCPSocket != nil {
		set = append(set, "tcpSocket")
	}
	if h.Sleep != nil {
		set = append(set, "sleep")
	}
	switch {
	case len(set) == 0:
		return errors.New("invalid handler: one of exec, httpGet, sleep must be set")
	case len(set) > 1:
		return fmt.Errorf("invalid handler: only one handler type may be set, got %s", strings.Join(set, ", "))
	case h.TCPSocket != nil:
		return errors.New("tcpSocket: not supported as a lifecycle handler (the kubelet fails such hooks too)")
	case h.Exec != nil && len(h.Exec.Command) == 0:
		return errors.New("exec.command: must not be empty")
	case h.Sleep != nil && h.Sleep.Seconds < 0:
		return fmt.Errorf("sleep.seconds: must be non-negative, got %d", h.Sleep.Seconds)
	}
	return nil
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

func (r *Runner) runHTTP(ctx context.Context, pod *corev1.Pod, podIP string, c *corev1.Container, a *corev1.HTTPGetAction) (string, error) {
	req, err := handler.NewHTTPRequest(ctx, a, c, podIP, handler.LifecycleUserAgent)
	if err != nil {
		return "", err
	}
	resp, err := r.client.Do(req)
	if err != nil && isHTTPResponseError(err) {
		// Before 1.26 the kubelet sent hooks over HTTP whatever the
		// scheme; it still retries so such pods keep working, without
		// the credentials meant for TLS.
		plain := req.Clone(ctx)
		plain.URL.Scheme = "http"
		plain.Header.Del("Authorization")
		if resp2, err2 := r.client.Do(plain); err2 == nil {
			if r.event != nil {
				r.event(pod, "LifecycleHTTPFallback", fmt.Sprintf("request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", plain.URL.Host))
			}
			resp, err = resp2, nil
		}
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	// Drain a little so the server sees the request complete.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if r.failStatus && (resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest) {
		return resp.Status, fmt.Errorf("HTTP lifecycle hook %s returned %s", req.URL, resp.Status)
	}
	return "", nil
}

// isHTTPResponseError: an HTTPS request answered in plain HTTP.
func isHTTPResponseError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "server gave HTTP response to HTTPS client")
}

// sleepError keeps the kubelet's text while letting callers see the
// context's reason with errors.Is.
type sleepError struct{ cause error }

func (e *sleepError) Error() string { return "container terminated before sleep hook finished" }
func (e *sleepError) Unwrap() error { return e.cause }

func sleep(ctx context.Context, seconds int64) error {
	t := time.NewTimer(time.Duration(seconds) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &sleepError{cause: ctx.Err()}
	}
}
