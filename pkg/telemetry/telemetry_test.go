package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/pkg/telemetry/telemetrytest"
)

// Tests here share the otel globals, so none runs in parallel.

func TestResourceCarriesServiceIdentity(t *testing.T) {
	rec := telemetrytest.Start(t, "shopd")
	ctx := context.Background()

	_, span := otel.Tracer("test").Start(ctx, "root work")
	span.End()
	_, span = rec.Telemetry().ForService("payment").Tracer("test").Start(ctx, "payment work")
	span.End()

	spans := rec.Spans()
	root := telemetrytest.RequireSpan(t, spans, "root work")
	pay := telemetrytest.RequireSpan(t, spans, "payment work")
	if got := telemetrytest.ServiceOf(root); got != "shopd" {
		t.Errorf("root span service = %q, want shopd", got)
	}
	if got := telemetrytest.ServiceOf(pay); got != "payment" {
		t.Errorf("payment span service = %q, want payment", got)
	}
	for _, sp := range []struct {
		name string
		set  attribute.Set
	}{{"root", *root.Resource.Set()}, {"payment", *pay.Resource.Set()}} {
		if v, _ := sp.set.Value(semconv.DeploymentEnvironmentNameKey); v.AsString() != telemetry.DefaultEnvironment {
			t.Errorf("%s: deployment.environment.name = %q, want %q", sp.name, v.AsString(), telemetry.DefaultEnvironment)
		}
		if v, _ := sp.set.Value(semconv.ServiceVersionKey); v.AsString() == "" {
			t.Errorf("%s: service.version is empty", sp.name)
		}
		if v, _ := sp.set.Value(semconv.ServiceInstanceIDKey); v.AsString() == "" {
			t.Errorf("%s: service.instance.id is empty", sp.name)
		}
	}
	if first, again := rec.Telemetry().ForService("payment"), rec.Telemetry().ForService("payment"); first != again {
		t.Error("ForService returned two values for one name")
	}
	if rec.Telemetry().ForService("shopd") != rec.Telemetry() {
		t.Error("ForService of the root's own name is not the root")
	}
}

func TestSetupRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  telemetry.Config
		want string
	}{
		{"no service name", telemetry.Config{SampleRatio: 1}, "service name"},
		{"ratio above one", telemetry.Config{ServiceName: "x", SampleRatio: 1.5}, "outside [0, 1]"},
		{"negative ratio", telemetry.Config{ServiceName: "x", SampleRatio: -0.1}, "outside [0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := telemetry.Setup(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Setup error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	var cfg telemetry.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	t.Setenv("SHOP_TRACE_SAMPLE", "0.25")
	t.Setenv("SHOP_OTLP_ENDPOINT", "127.0.0.1:4317")
	if err := config.Parse(fs, []string{"-deployment-environment=staging"}); err != nil {
		t.Fatal(err)
	}
	want := telemetry.Config{OTLPEndpoint: "127.0.0.1:4317", SampleRatio: 0.25, Environment: "staging"}
	if cfg != want {
		t.Fatalf("config = %+v, want %+v", cfg, want)
	}

	var defaults telemetry.Config
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	defaults.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if defaults.SampleRatio != 1 || defaults.OTLPEndpoint != "" || defaults.Environment != telemetry.DefaultEnvironment {
		t.Fatalf("defaults = %+v, want every trace sampled, no export, dev", defaults)
	}
}

func TestSamplerFollowsConfigAndParent(t *testing.T) {
	sampledParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	unsampledParent := sampledParent.WithTraceFlags(0)
	tests := []struct {
		name   string
		ratio  float64
		parent trace.SpanContext
		want   bool
	}{
		{"ratio 1 samples a new trace", 1, trace.SpanContext{}, true},
		{"ratio 0 samples no new trace", 0, trace.SpanContext{}, false},
		{"ratio 0 keeps a sampled parent's decision", 0, sampledParent, true},
		{"ratio 1 keeps an unsampled parent's decision", 1, unsampledParent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "s", SampleRatio: tt.ratio},
				telemetry.WithSyncSpanExporter(tracetest.NewInMemoryExporter()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			ctx := context.Background()
			if tt.parent.IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, tt.parent)
			}
			_, span := tel.Tracer("test").Start(ctx, "op")
			defer span.End()
			if got := span.SpanContext().IsSampled(); got != tt.want {
				t.Fatalf("sampled = %v, want %v", got, tt.want)
			}
		})
	}
}

// With no exporter nothing would see a span, so a process records none of its own
// traces, whatever the ratio; they still get ids (for logs and the services called),
// and a caller's sampled trace is still recorded.
func TestWithoutExporterNewTracesAreNotRecorded(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "s", SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	_, span := tel.Tracer("test").Start(context.Background(), "op")
	span.End()
	if span.IsRecording() || span.SpanContext().IsSampled() || !span.SpanContext().IsValid() {
		t.Fatalf("new trace: recording %v, sampled %v, valid %v; want an unrecorded trace with ids",
			span.IsRecording(), span.SpanContext().IsSampled(), span.SpanContext().IsValid())
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	_, child := tel.Tracer("test").Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "op")
	child.End()
	if !child.SpanContext().IsSampled() {
		t.Fatal("a sampled caller's trace was dropped")
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	rec := telemetrytest.Start(t, "order", telemetry.WithLogOutput(&buf))
	log := rec.Telemetry().ForService("payment").Logger()

	ctx, span := otel.Tracer("test").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside", "k", "v")
	span.End()
	log.Info("outside")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %d: %q", len(lines), buf.String())
	}
	var inside, outside map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &inside); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &outside); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if inside[telemetry.LogKeyTraceID] != sc.TraceID().String() || inside[telemetry.LogKeySpanID] != sc.SpanID().String() {
		t.Errorf("record inside the span = %v, want trace_id %s span_id %s", inside, sc.TraceID(), sc.SpanID())
	}
	if inside["service"] != "payment" || inside["k"] != "v" {
		t.Errorf("record lost its attributes: %v", inside)
	}
	if _, ok := outside[telemetry.LogKeyTraceID]; ok {
		t.Errorf("record outside any span has a trace id: %v", outside)
	}
}

func TestMetricsHandlerServesInstruments(t *testing.T) {
	rec := telemetrytest.Start(t, "order")
	before := telemetrytest.Scrape(t, rec.Telemetry().MetricsHandler())
	m := otel.Meter("test")
	orders, err := m.Int64Counter("orders.placed", metric.WithDescription("Orders placed."))
	if err != nil {
		t.Fatal(err)
	}
	took, err := m.Float64Histogram("work.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	orders.Add(ctx, 2, metric.WithAttributes(attribute.String("kind", "test")))
	orders.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", "test")))
	took.Record(ctx, 0.3)

	got := telemetrytest.Scrape(t, rec.Telemetry().MetricsHandler())
	if v := got.Value("orders_placed_total", "kind", "test") - before.Value("orders_placed_total", "kind", "test"); v != 3 {
		t.Errorf("orders_placed_total{kind=test} = %v, want 3", v)
	}
	if v := got.Value("work_duration_seconds") - before.Value("work_duration_seconds"); v != 1 {
		t.Errorf("work_duration_seconds count = %v, want 1", v)
	}
	h := got["work_duration_seconds"].GetMetric()[0].GetHistogram()
	if n := len(h.GetBucket()); n != len(telemetry.DurationBuckets)+1 { // and +Inf
		t.Errorf("work_duration_seconds has %d buckets, want the %d second-scale ones and +Inf", n, len(telemetry.DurationBuckets))
	}
	for _, name := range []string{"target_info", "go_goroutines"} {
		if !got.Has(name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func TestRoutingPicksTheServiceOfTheWork(t *testing.T) {
	rec := telemetrytest.Start(t, "shopd")
	tel := rec.Telemetry()
	order, payment := tel.ForService("order"), tel.ForService("payment")
	tracer := otel.Tracer("test")

	// A service's context: spans without a local parent are its own.
	orderCtx := telemetry.NewContext(context.Background(), order)
	ctx, consume := tracer.Start(orderCtx, "order consumes")
	// A local parent wins over the context's service: work inside payment's span
	// stays payment's even on a context that says order.
	pctx, paySpan := payment.Tracer("test").Start(ctx, "payment handles")
	_, inner := tracer.Start(pctx, "payment inner")
	inner.End()
	paySpan.End()
	consume.End()

	// A remote parent (as extracted from NATS headers) does not pick a provider: the
	// context's service does, and the trace continues.
	remote := trace.ContextWithRemoteSpanContext(orderCtx, consume.SpanContext())
	_, fromRemote := tracer.Start(remote, "order after hop")
	fromRemote.End()

	// Nothing on the context: the process's own service.
	_, bare := tracer.Start(context.Background(), "bare")
	bare.End()

	spans := rec.Spans()
	for name, want := range map[string]string{
		"order consumes":  "order",
		"payment handles": "payment",
		"payment inner":   "payment",
		"order after hop": "order",
		"bare":            "shopd",
	} {
		if got := telemetrytest.ServiceOf(telemetrytest.RequireSpan(t, spans, name)); got != want {
			t.Errorf("span %q from service %q, want %q", name, got, want)
		}
	}
	telemetrytest.RequireChildOf(t, telemetrytest.RequireSpan(t, spans, "payment inner"), telemetrytest.RequireSpan(t, spans, "payment handles"))
	telemetrytest.RequireChildOf(t, telemetrytest.RequireSpan(t, spans, "order after hop"), telemetrytest.RequireSpan(t, spans, "order consumes"))
	telemetrytest.RequireOneTrace(t, spans.Named("order consumes")[:1])
}

func TestDeferredTracerProviderBindsToTheServiceContext(t *testing.T) {
	rec := telemetrytest.Start(t, "shopd")
	var d telemetry.DeferredTracerProvider
	tracer := d.Tracer("test")

	_, before := tracer.Start(context.Background(), "before bind")
	before.End()
	d.Bind(context.Background()) // no service on the context: unchanged
	d.Bind(telemetry.NewContext(context.Background(), rec.Telemetry().ForService("catalog")))
	_, after := tracer.Start(context.Background(), "after bind")
	after.End()

	spans := rec.Spans()
	if got := telemetrytest.ServiceOf(telemetrytest.RequireSpan(t, spans, "before bind")); got != "shopd" {
		t.Errorf("span before Bind from %q, want the global provider's shopd", got)
	}
	if got := telemetrytest.ServiceOf(telemetrytest.RequireSpan(t, spans, "after bind")); got != "catalog" {
		t.Errorf("span after Bind from %q, want catalog", got)
	}
}

func TestPropagatorIsW3C(t *testing.T) {
	rec := telemetrytest.Start(t, "order")
	ctx, span := rec.Telemetry().Tracer("test").Start(context.Background(), "op")
	defer span.End()
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	if !strings.Contains(carrier.Get("traceparent"), span.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q does not carry trace %s", carrier.Get("traceparent"), span.SpanContext().TraceID())
	}
}

// collector is an OTLP/gRPC trace receiver on loopback.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	services map[string][]string // service.name -> span names
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var svc string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == string(semconv.ServiceNameKey) {
				svc = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				c.services[svc] = append(c.services[svc], sp.GetName())
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestShutdownFlushesToOTLPCollector(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{services: make(map[string][]string)}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName: "shopd", OTLPEndpoint: lis.Addr().String(), SampleRatio: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.ForService("inventory").Tracer("test").Start(context.Background(), "reserve")
	span.End()
	_, span = tel.Tracer("test").Start(context.Background(), "boot")
	span.End()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := col.services["inventory"]; len(got) != 1 || got[0] != "reserve" {
		t.Errorf("collector got %v for inventory, want [reserve]", got)
	}
	if got := col.services["shopd"]; len(got) != 1 || got[0] != "boot" {
		t.Errorf("collector got %v for shopd, want [boot]", got)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
