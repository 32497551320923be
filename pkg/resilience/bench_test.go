package resilience_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventshop/eventshop/pkg/resilience"
)

// BenchmarkResilientUnary measures the chain's overhead: the same loopback Check,
// called serially, through a bare connection and through resilience.Dial with every
// layer enabled (default deadline applied, bulkhead, breaker, retry on idempotent).
func BenchmarkResilientUnary(b *testing.B) {
	_, addr := startHealth(b)

	bare, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bare.Close() })
	resilient := dial(b, addr, resilience.WithIdempotentMethods(checkMethod))

	for _, bc := range []struct {
		name   string
		client healthpb.HealthClient
	}{
		{"bare", healthpb.NewHealthClient(bare)},
		{"resilient", resilient},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			req := &healthpb.HealthCheckRequest{}
			if _, err := bc.client.Check(ctx, req); err != nil { // connect outside the timing
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.client.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChainOnly runs the unary chain around an invoker that does nothing, so the
// chain's own cost shows without network noise.
func BenchmarkChainOnly(b *testing.B) {
	for _, bc := range []struct {
		name     string
		deadline bool
	}{{"default-deadline", false}, {"caller-deadline", true}} {
		b.Run(bc.name, func(b *testing.B) {
			intercept := resilience.NewPolicy("bench", resilience.WithLogger(quiet)).UnaryClientInterceptor()
			invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
			ctx := context.Background()
			if bc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Hour)
				defer cancel()
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := intercept(ctx, checkMethod, nil, nil, nil, invoker); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
