// Package criserver serves the CRI over gRPC on a unix socket: listener and
// its permissions, interceptors (request id, logging, panic recovery, error
// to status code) and registration.
package criserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Service is what the server serves.
type Service interface {
	runtimeapi.RuntimeServiceServer
	runtimeapi.ImageServiceServer
}

// Options configure a Server.
type Options struct {
	Service Service
	Logger  *slog.Logger
}

// Server is the CRI gRPC server.
type Server struct {
	grpc *grpc.Server
	log  *slog.Logger
}

// maxMsgSize matches the kubelet's CRI client limit (16 MiB): ExecSync output
// and large lists must fit.
const maxMsgSize = 16 * 1024 * 1024

// New returns a server with the interceptors and both services registered.
func New(opts Options) (*Server, error) {
	if opts.Service == nil {
		return nil, errors.New("criserver: Service is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(unaryInterceptor(log)),
		grpc.MaxRecvMsgSize(maxMsgSize),
		grpc.MaxSendMsgSize(maxMsgSize),
	)
	runtimeapi.RegisterRuntimeServiceServer(g, opts.Service)
	runtimeapi.RegisterImageServiceServer(g, opts.Service)
	return &Server{grpc: g, log: log}, nil
}

// Serve serves on l until Stop.
func (s *Server) Serve(l net.Listener) error {
	err := s.grpc.Serve(l)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop stops accepting, lets in-flight calls finish for up to grace, then
// cuts the rest.
func (s *Server) Stop(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.grpc.Stop()
	}
}

// Listen opens a listener for an endpoint "unix:///path" (or a bare path).
// The socket is 0660 in a 0750 directory: only root and the socket's group
// may drive the runtime.
func Listen(endpoint string) (net.Listener, error) {
	path, err := socketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("listen %s: %w", endpoint, err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("listen %s: %w", endpoint, err)
	}
	// A socket left by a crashed berth would make bind fail; a live one
	// answers, so only remove it when nothing does.
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another server is listening", endpoint)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", endpoint, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", endpoint, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", endpoint, err)
	}
	return l, nil
}

func socketPath(endpoint string) (string, error) {
	if strings.HasPrefix(endpoint, "/") {
		return endpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "unix" || u.Path == "" {
		return "", fmt.Errorf("endpoint %q: only unix:///path is supported", endpoint)
	}
	return u.Path, nil
}

type requestIDKey struct{}

// RequestID is the id the interceptor gave the request in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// quietRPCs are polled by the kubelet; they log at Debug.
var quietRPCs = map[string]bool{
	"Version": true, "Status": true, "ListPodSandbox": true, "PodSandboxStatus": true,
	"ListContainers": true, "ContainerStatus": true, "ListImages": true, "ImageStatus": true,
	"ImageFsInfo": true, "RuntimeConfig": true, "ContainerStats": true, "ListContainerStats": true,
	"PodSandboxStats": true, "ListPodSandboxStats": true, "ListMetricDescriptors": true, "ListPodSandboxMetrics": true,
}

func unaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		rpc := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		id := newRequestID()
		ctx = context.WithValue(ctx, requestIDKey{}, id)
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "panic in handler", "rpc", rpc, "request_id", id, "panic", p, "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "%s: internal error (request %s)", rpc, id)
			}
			err = toStatus(err)
			level := slog.LevelInfo
			if quietRPCs[rpc] {
				level = slog.LevelDebug
			}
			code := status.Code(err)
			if err != nil && code != codes.NotFound && code != codes.Unimplemented {
				level = slog.LevelWarn
			}
			attrs := []any{"rpc", rpc, "request_id", id, "duration", time.Since(start), "code", code.String()}
			if err != nil {
				attrs = append(attrs, "error", status.Convert(err).Message())
			}
			log.Log(ctx, level, "cri call", attrs...)
		}()
		return handler(ctx, req)
	}
}
