package images

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/status"
	crierrors "k8s.io/cri-api/pkg/errors"
)

// Reasons a container waits on its image, as the kubelet puts them in
// ContainerStateWaiting.Reason.
const (
	ReasonErrImagePull              = "ErrImagePull"
	ReasonImagePullBackOff          = "ImagePullBackOff"
	ReasonErrImageNeverPull         = "ErrImageNeverPull"
	ReasonInvalidImageName          = "InvalidImageName"
	ReasonImageInspectError         = "ImageInspectError"
	ReasonRegistryUnavailable       = "RegistryUnavailable"
	ReasonSignatureValidationFailed = "SignatureValidationFailed"
)

// Event reasons, as the kubelet records them.
const (
	EventPulling           = "Pulling"
	EventPulled            = "Pulled"
	EventFailed            = "Failed"
	EventBackOff           = "BackOff"
	EventErrImageNeverPull = "ErrImageNeverPull"
	EventInspectFailed     = "InspectFailed"
	// EventFailedToRetrieveImagePullSecret warns about a pull secret that
	// cannot hold registry credentials (wrong type or empty); the kubelet
	// skips such secrets silently, we say so.
	EventFailedToRetrieveImagePullSecret = "FailedToRetrieveImagePullSecret"
)

// Error is a failure to provide a container's image. Reason and Message
// are what the kubelet shows in the container's waiting state.
type Error struct {
	Reason  string
	Message string
	// Err is the cause, if any: the runtime's pull error, or for
	// ImagePullBackOff the error of the last pull.
	Err error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

// pullError classifies a failed pull as the kubelet does: the runtime
// signals registry and signature failures by a reason prefix on the
// message (the CRI has no typed errors over gRPC), anything else is
// ErrImagePull with the runtime's text.
func pullError(image string, err error) *Error {
	text := err.Error()
	// A gRPC status error reads "rpc error: code = ... desc = <message>";
	// the reason prefix is on the message.
	if s, ok := status.FromError(err); ok {
		text = s.Message()
	}
	for _, known := range []struct {
		sentinel error
		reason   string
		because  string
	}{
		{crierrors.ErrRegistryUnavailable, ReasonRegistryUnavailable, "the registry is unavailable"},
		{crierrors.ErrSignatureValidationFailed, ReasonSignatureValidationFailed, "the signature validation failed"},
	} {
		if rest, ok := strings.CutPrefix(text, known.sentinel.Error()); ok {
			return &Error{
				Reason:  known.reason,
				Message: fmt.Sprintf("image pull failed for %s because %s%s", image, known.because, rest),
				Err:     err,
			}
		}
	}
	return &Error{Reason: ReasonErrImagePull, Message: err.Error(), Err: err}
}
