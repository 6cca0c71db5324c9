package streaming

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// The channels of the remote command WebSocket protocols.
const (
	stdinChannel = iota
	stdoutChannel
	stderrChannel
	errorChannel
	resizeChannel
)

// serveV5 serves exec and attach to a WebSocket client speaking
// v5.channel.k8s.io: client-go's NewWebSocketExecutor, crictl -t websocket.
// v5 is v4 (JSON status with the exit code on the error channel) plus the
// CLOSE signal, which wsstream turns into EOF on the stdin channel.
func (s *Server) serveV5(w http.ResponseWriter, req *http.Request, pending any) {
	var stdin, stdout, stderr, tty bool
	var run func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error
	switch r := pending.(type) {
	case *runtimeapi.ExecRequest:
		stdin, stdout, stderr, tty = r.Stdin, r.Stdout, r.Stderr, r.Tty
		run = func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
			return s.runtime.Exec(ctx, r.ContainerId, r.Cmd, in, out, errOut, r.Tty, resize)
		}
	case *runtimeapi.AttachRequest:
		stdin, stdout, stderr, tty = r.Stdin, r.Stdout, r.Stderr, r.Tty
		run = func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
			return s.runtime.Attach(ctx, r.ContainerId, in, out, errOut, r.Tty, resize)
		}
	default:
		http.NotFound(w, req)
		return
	}

	channels := []wsstream.ChannelType{
		stdinChannel:  channelType(stdin, wsstream.ReadChannel),
		stdoutChannel: channelType(stdout, wsstream.WriteChannel),
		stderrChannel: channelType(stderr, wsstream.WriteChannel),
		errorChannel:  wsstream.WriteChannel,
		resizeChannel: wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(s.idleTimeout)
	_, streams, err := conn.Open(w, req)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "path", req.URL.Path, "error", err)
		return
	}
	defer conn.Close()

	// An empty frame on the lowest writable channel tells the client the
	// session is ready, as cri-streaming does.
	switch {
	case stdout:
		_, err = streams[stdoutChannel].Write(nil)
	case stderr:
		_, err = streams[stderrChannel].Write(nil)
	default:
		_, err = streams[errorChannel].Write(nil)
	}
	if err != nil {
		return
	}

	ctx := req.Context()
	var in io.Reader
	var out, errOut io.WriteCloser
	if stdin {
		in = streams[stdinChannel]
	}
	if stdout {
		out = streams[stdoutChannel]
	}
	if stderr {
		errOut = streams[stderrChannel]
	}
	var resize chan remotecommand.TerminalSize
	if tty {
		resize = make(chan remotecommand.TerminalSize)
		go decodeResizes(ctx, streams[resizeChannel], resize)
	}
	runErr := run(ctx, in, out, errOut, resize)
	if err := writeStatus(streams[errorChannel], runErr); err != nil {
		s.log.Debug("write session status", "path", req.URL.Path, "error", err)
	}
}

func channelType(open bool, t wsstream.ChannelType) wsstream.ChannelType {
	if open {
		return t
	}
	return wsstream.IgnoreChannel
}

// decodeResizes reads the client's terminal sizes until the channel ends
// (the connection closes) or ctx ends.
func decodeResizes(ctx context.Context, r io.Reader, sizes chan<- remotecommand.TerminalSize) {
	defer close(sizes)
	dec := json.NewDecoder(r)
	for {
		var size remotecommand.TerminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		select {
		case sizes <- size:
		case <-ctx.Done():
			return
		}
	}
}

// status is the v4/v5 error-channel message, a metav1.Status.
type status struct {
	Status  string         `json:"status,omitempty"`
	Message string         `json:"message,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Details *statusDetails `json:"details,omitempty"`
	Code    int32          `json:"code,omitempty"`
}

type statusDetails struct {
	Causes []statusCause `json:"causes,omitempty"`
}

type statusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// sessionStatus is what the client is told at the end: success, the
// command's non-zero exit code, or an internal error.
func sessionStatus(err error) status {
	if err == nil {
		return status{Status: "Success"}
	}
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return status{
			Status:  "Failure",
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Details: &statusDetails{Causes: []statusCause{{
				Type:    remotecommand.ExitCodeCauseType,
				Message: strconv.Itoa(exitErr.ExitStatus()),
			}}},
		}
	}
	return status{
		Status:  "Failure",
		Reason:  "InternalError",
		Message: fmt.Sprintf("Internal error occurred: %v", err),
		Code:    http.StatusInternalServerError,
	}
}

func writeStatus(w io.Writer, err error) error {
	b, mErr := json.Marshal(sessionStatus(err))
	if mErr != nil {
		return mErr
	}
	_, wErr := w.Write(b)
	return wErr
}
