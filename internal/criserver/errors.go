package criserver

import (
	"context"
	"errors"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code is the one place an error becomes a gRPC code. Handlers wrap
// errdefs kinds (which Docker client errors carry too); a status error
// made deeper down passes through unchanged.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case client.IsErrConnectionFailed(err):
		return codes.Unavailable
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument
	case errdefs.IsNotFound(err):
		return codes.NotFound
	case errdefs.IsAlreadyExists(err):
		return codes.AlreadyExists
	case errdefs.IsFailedPrecondition(err), errdefs.IsConflict(err):
		// Docker answers Conflict for a name in use (handlers turn that
		// into AlreadyExists where it means it) and for wrong states:
		// an image in use, a removal in progress, a limit below another.
		return codes.FailedPrecondition
	case errdefs.IsUnavailable(err):
		return codes.Unavailable
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented
	case errdefs.IsPermissionDenied(err):
		return codes.PermissionDenied
	case errdefs.IsUnauthorized(err):
		return codes.Unauthenticated
	case errdefs.IsResourceExhausted(err):
		return codes.ResourceExhausted
	case errdefs.IsDataLoss(err):
		return codes.DataLoss
	case errdefs.IsDeadlineExceeded(err):
		return codes.DeadlineExceeded
	default:
		return codes.Unknown
	}
}

// toStatus turns err into a status error with its code and the full
// message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	return status.Error(Code(err), err.Error())
}
