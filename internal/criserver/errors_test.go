package criserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{fmt.Errorf("config.x: %w", errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("sandbox: %w", errdefs.ErrNotFound), codes.NotFound},
		{fmt.Errorf("in use: %w", errdefs.ErrConflict), codes.FailedPrecondition},
		{fmt.Errorf("name: %w", errdefs.ErrAlreadyExists), codes.AlreadyExists},
		{fmt.Errorf("state: %w", errdefs.ErrFailedPrecondition), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", errdefs.ErrNotImplemented), codes.Unimplemented},
		{fmt.Errorf("x: %w", errdefs.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("exec: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{status.Error(codes.ResourceExhausted, "x"), codes.ResourceExhausted},
		{errors.New("plain"), codes.Unknown},
	}
	for _, tt := range tests {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("Code(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type stubService struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	err error
}

func (s *stubService) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &runtimeapi.VersionResponse{RuntimeName: "stub"}, nil
}

func (s *stubService) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	panic("boom")
}

// TestInterceptor checks, through a real gRPC connection, that handler
// errors reach the client with their code and message, panics become
// Internal, and unimplemented RPCs answer Unimplemented.
func TestInterceptor(t *testing.T) {
	svc := &stubService{}
	srv, err := New(Options{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	l := bufconn.Listen(1 << 20)
	go srv.Serve(l)
	defer srv.Stop(0)
	conn, err := grpc.NewClient("passthrough:///buf",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()

	if r, err := c.Version(ctx, &runtimeapi.VersionRequest{}); err != nil || r.RuntimeName != "stub" {
		t.Fatalf("Version = %v, %v", r, err)
	}
	svc.err = fmt.Errorf("config.metadata.name: empty: %w", errdefs.ErrInvalidArgument)
	_, err = c.Version(ctx, &runtimeapi.VersionRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "config.metadata.name") {
		t.Errorf("Version error = %v, want InvalidArgument naming the field", err)
	}
	if _, err := c.Status(ctx, &runtimeapi.StatusRequest{}); status.Code(err) != codes.Internal {
		t.Errorf("panicking Status = %v, want Internal", err)
	}
	if _, err := c.ExecSync(ctx, &runtimeapi.ExecSyncRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ExecSync = %v, want Unimplemented", err)
	}
}

func TestSocketPath(t *testing.T) {
	for in, want := range map[string]string{"unix:///run/b.sock": "/run/b.sock", "/run/b.sock": "/run/b.sock"} {
		if got, err := socketPath(in); err != nil || got != want {
			t.Errorf("socketPath(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"tcp://1.2.3.4:5", "unix://", "run/b.sock"} {
		if _, err := socketPath(in); err == nil {
			t.Errorf("socketPath(%q) succeeded", in)
		}
	}
}
