package resilience

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// relayHealth answers Check by calling next with the context of the call it serves,
// as a service calling another service does, and records what it received.
type relayHealth struct {
	healthpb.UnimplementedHealthServer
	next   healthpb.HealthClient
	canary chan []string
}

func (s *relayHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.canary <- md.Get("x-canary")
	if s.next != nil {
		return s.next.Check(ctx, req)
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func serveRelay(t *testing.T, next healthpb.HealthClient) (*relayHealth, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	r := &relayHealth{next: next, canary: make(chan []string, 4)}
	healthpb.RegisterHealthServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r, lis.Addr().String()
}

func dialHealth(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	cc, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func TestCanaryHeaderFollowsEveryHop(t *testing.T) {
	last, lastAddr := serveRelay(t, nil)
	first, firstAddr := serveRelay(t, dialHealth(t, lastAddr))
	client := dialHealth(t, firstAddr)

	tests := []struct {
		name string
		md   []string
		want string
	}{
		{"tester asks for the canary", []string{"x-canary", "always"}, "always"},
		{"ordinary request", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
			}
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			for hop, r := range []*relayHealth{first, last} {
				got := <-r.canary
				if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
					t.Errorf("hop %d saw x-canary %q, want %q", hop+1, got, tc.want)
				}
			}
		})
	}
}
