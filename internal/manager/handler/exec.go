package handler

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	criclient "k8s.io/cri-client/pkg"
)

// ExitCode returns the exit code an ExecSync error carries. cri-client
// turns a non-zero exit into a k8s.io/utils/exec.CodeExitError, with
// stdout and stderr still returned; any error with ExitStatus() counts,
// so an in-process runtime can report exits the same way.
func ExitCode(err error) (int, bool) {
	var e interface{ ExitStatus() int }
	if errors.As(err, &e) {
		return e.ExitStatus(), true
	}
	return 0, false
}

// IsTimeout reports whether an ExecSync error means the command ran past
// its timeout: cri-client wraps ErrCommandTimedOut; a runtime called
// without it answers DeadlineExceeded.
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, criclient.ErrCommandTimedOut) ||
		errors.Is(err, context.DeadlineExceeded) ||
		status.Code(err) == codes.DeadlineExceeded
}

// CombinedOutput is stdout then stderr, as the kubelet's RunInContainer
// returns them (not interleaved: the CRI keeps them apart).
func CombinedOutput(stdout, stderr []byte) []byte {
	out := make([]byte, 0, len(stdout)+len(stderr))
	return append(append(out, stdout...), stderr...)
}
