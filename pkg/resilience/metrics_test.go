package resilience_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventshop/eventshop/pkg/resilience"
)

// sumFor adds the int64 points of metric name that carry every wanted attribute, and
// reports whether there was any.
func sumFor(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (int64, bool) {
	var total int64
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
		next:
			for _, p := range points {
				for _, kv := range want {
					if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
						continue next
					}
				}
				total += p.Value
				found = true
			}
		}
	}
	return total, found
}

func TestMetricsOnTheGlobalProvider(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	hs, addr := startHealth(t)
	hs.otherwise(fail(codes.Unavailable))
	cc, err := resilience.Dial(addr, resilience.WithName("metered"), resilience.WithLogger(quiet),
		resilience.WithBreaker(1, time.Hour), resilience.WithBulkhead(1, 0),
		resilience.WithRetry(2, time.Microsecond, time.Microsecond, time.Minute),
		resilience.WithIdempotentMethods(checkMethod))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	metered := healthpb.NewHealthClient(cc)
	_ = check(context.Background(), metered) // two attempts (one retry), then the breaker opens
	_ = check(context.Background(), metered) // rejected by the open breaker

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	target := attribute.String("target", "metered")
	tests := []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"resilience.retries", nil, 1},
		{"resilience.breaker.rejections", nil, 1},
		{"resilience.breaker.transitions", []attribute.KeyValue{attribute.String("state", "open")}, 1},
		{"resilience.breaker.state", nil, 2},
		{"resilience.bulkhead.in_flight", nil, 0},
	}
	for _, tt := range tests {
		got, found := sumFor(rm, tt.name, append(tt.attrs, target)...)
		if !found || got != tt.want {
			t.Errorf("%s{target=metered %v} = %d (found %v), want %d", tt.name, tt.attrs, got, found, tt.want)
		}
	}
}

func TestSpanEventOnRejection(t *testing.T) {
	hs, addr := startHealth(t)
	hs.otherwise(fail(codes.Unavailable))
	c := dial(t, addr, resilience.WithBreaker(1, time.Hour))

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("test").Start(context.Background(), "caller")
	_ = check(ctx, c) // opens the breaker
	assertCircuitOpen(t, check(ctx, c))
	span.End()

	var names []string
	for _, ev := range rec.Ended()[0].Events() {
		names = append(names, ev.Name)
	}
	if len(names) != 1 || names[0] != "resilience.breaker.rejected" {
		t.Fatalf("span events = %q, want one resilience.breaker.rejected", names)
	}
}
