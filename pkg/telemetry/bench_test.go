package telemetry_test

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/telemetry"
)

// discard is a span exporter that drops everything, so the benchmarks measure
// creating, recording and batching spans, not a collector.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func setupBench(b *testing.B, ratio float64) *telemetry.Telemetry {
	b.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "bench", SampleRatio: ratio},
		telemetry.WithSpanExporter(discard{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// BenchmarkSpanStart compares a span started through the routing global provider with
// one started on the service's provider directly: the price of one process hosting
// several services.
func BenchmarkSpanStart(b *testing.B) {
	tel := setupBench(b, 1)
	ctx := telemetry.NewContext(context.Background(), tel.ForService("order"))
	for _, bc := range []struct {
		name  string
		start func() func()
	}{
		{"routed", func() func() {
			_, s := otel.Tracer("bench").Start(ctx, "op")
			return func() { s.End() }
		}},
		{"direct", func() func() {
			_, s := tel.ForService("order").Tracer("bench").Start(ctx, "op")
			return func() { s.End() }
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.start()()
			}
		})
	}
}

// BenchmarkGRPCCall is one unary call through resilience.Dial to a grpcserver on
// loopback, with every trace sampled and with none (sample ratio 0: spans are still
// created, not recorded), so their ratio is the tracing overhead of an RPC.
func BenchmarkGRPCCall(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ratio float64
	}{{"sampled", 1}, {"unsampled", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			tel := setupBench(b, bc.ratio)
			srv := grpcserver.New()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, stop := context.WithCancel(telemetry.NewContext(context.Background(), tel.ForService("catalog")))
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, lis) }()
			b.Cleanup(func() { stop(); <-served })
			cc, err := resilience.Dial(lis.Addr().String(), resilience.WithName("catalog"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cc.Close() })
			client := healthpb.NewHealthClient(cc)
			callCtx := telemetry.NewContext(context.Background(), tel.ForService("cart"))
			if _, err := client.Check(callCtx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Check(callCtx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
