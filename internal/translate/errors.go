package translate

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// Every error a caller can fix starts with the CRI field path as the proto
// spells it, so the kubelet's event tells the user which field to change;
// the errdefs kind lets the server pick the gRPC code without parsing text.

// invalidf reports bad input in field.
func invalidf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// notImplementedf reports a valid request Docker cannot carry out at all.
func notImplementedf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrNotImplemented)
}

// preconditionf reports a valid request this host cannot carry out.
func preconditionf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrFailedPrecondition)
}

// indexed returns the path of element i of the repeated field.
func indexed(field string, i int) string {
	return fmt.Sprintf("%s[%d]", field, i)
}

// keyed returns the path of key k of the map field.
func keyed(field, k string) string {
	return fmt.Sprintf("%s[%q]", field, k)
}
