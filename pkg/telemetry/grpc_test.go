package telemetry_test

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/pkg/telemetry/telemetrytest"
)

// A call from one service to another through resilience.Dial and grpcserver is one
// trace: caller span -> client span -> server span -> handler span, each attributed to
// the service doing the work, although both run in this one process.
func TestGRPCCallIsOneTraceAcrossClientAndServer(t *testing.T) {
	rec := telemetrytest.Start(t, "shopd")
	tel := rec.Telemetry()
	before := telemetrytest.Scrape(t, tel.MetricsHandler())

	handlerSpan := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		ctx, span := otel.Tracer("test").Start(ctx, "handler work")
		defer span.End()
		return next(ctx, req)
	}
	srv := grpcserver.New(grpcserver.WithUnaryInterceptors(handlerSpan))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(telemetry.NewContext(context.Background(), tel.ForService("catalog")))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, lis) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	cc, err := resilience.Dial(lis.Addr().String(), resilience.WithName("catalog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })

	ctx := telemetry.NewContext(context.Background(), tel.ForService("cart"))
	ctx, caller := otel.Tracer("test").Start(ctx, "cart adds item")
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	caller.End()

	const method = "grpc.health.v1.Health/Check"
	spans := rec.WaitFor(t, func(s telemetrytest.Spans) bool {
		return len(s.Named(method)) == 2 && len(s.Named("handler work")) == 1
	})
	telemetrytest.RequireOneTrace(t, spans)
	var client, server = spans.Named(method)[0], spans.Named(method)[1]
	if client.SpanKind != trace.SpanKindClient {
		client, server = server, client
	}
	if client.SpanKind != trace.SpanKindClient || server.SpanKind != trace.SpanKindServer {
		t.Fatalf("want a client and a server span for %s:\n%s", method, spans.Tree())
	}
	callerStub := telemetrytest.RequireSpan(t, spans, "cart adds item")
	handler := telemetrytest.RequireSpan(t, spans, "handler work")
	telemetrytest.RequireChildOf(t, client, callerStub)
	telemetrytest.RequireChildOf(t, server, client)
	telemetrytest.RequireChildOf(t, handler, server)

	for span, want := range map[string]string{"client": telemetrytest.ServiceOf(client), "caller": telemetrytest.ServiceOf(callerStub)} {
		if want != "cart" {
			t.Errorf("%s span from %q, want cart", span, want)
		}
	}
	for span, want := range map[string]string{"server": telemetrytest.ServiceOf(server), "handler": telemetrytest.ServiceOf(handler)} {
		if want != "catalog" {
			t.Errorf("%s span from %q, want catalog", span, want)
		}
	}

	// otelgrpc's RED metrics reach the Prometheus handler.
	calls := func(m telemetrytest.Metrics, side string) float64 {
		return m.Value("rpc_"+side+"_call_duration_seconds", "rpc_method", method)
	}
	telemetrytest.WaitForMetrics(t, tel.MetricsHandler(), func(m telemetrytest.Metrics) bool {
		return calls(m, "client")-calls(before, "client") == 1 && calls(m, "server")-calls(before, "server") == 1
	})
}
