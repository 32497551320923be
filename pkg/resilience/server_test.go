package resilience_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const checkMethod = "/grpc.health.v1.Health/Check"

// step is what the scripted server does for one Check call.
type step func(ctx context.Context) error

func ok() step { return func(context.Context) error { return nil } }

func fail(c codes.Code) step {
	return func(context.Context) error { return status.Error(c, "scripted "+c.String()) }
}

// hang blocks until the call's context ends.
func hang() step {
	return func(ctx context.Context) error {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
}

// healthServer is a real grpc.health.v1 Health service that misbehaves on cue: each
// Check consumes the next scripted step, then falls back to the default step.
type healthServer struct {
	healthpb.UnimplementedHealthServer

	calls atomic.Int64

	mu        sync.Mutex
	script    []step
	fallback  step
	deadlines []time.Time // deadline seen by each Check, zero when none

	// watchNext releases each further Watch message after the first.
	watchNext chan struct{}
}

var _ healthpb.HealthServer = (*healthServer)(nil)

func (s *healthServer) then(steps ...step) *healthServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, steps...)
	return s
}

func (s *healthServer) otherwise(st step) *healthServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = st
	return s
}

func (s *healthServer) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	s.calls.Add(1)
	dl, _ := ctx.Deadline()
	s.mu.Lock()
	st := s.fallback
	if len(s.script) > 0 {
		st, s.script = s.script[0], s.script[1:]
	}
	s.deadlines = append(s.deadlines, dl)
	s.mu.Unlock()
	if st == nil {
		st = ok()
	}
	if err := st(ctx); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (s *healthServer) lastDeadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadlines[len(s.deadlines)-1]
}

func (s *healthServer) Watch(_ *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	msg := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	if err := stream.Send(msg); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case _, open := <-s.watchNext:
			if !open {
				return nil
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
	}
}

// startHealth serves a fresh scripted Health service on 127.0.0.1:0 until t ends.
func startHealth(t testing.TB) (*healthServer, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	hs := &healthServer{watchNext: make(chan struct{})}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return hs, lis.Addr().String()
}
