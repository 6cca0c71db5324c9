package manager

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// isNotFound: the runtime no longer knows the object (removed between a
// list and a status call).
func isNotFound(err error) bool {
	return status.Code(err) == codes.NotFound
}
