package telemetry_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/pkg/telemetry/telemetrytest"
)

// crossHops runs, in one process as shopd does, a request that crosses both kinds of
// hop: "order" starts work, calls "catalog" over gRPC, and sends a command over NATS
// JetStream that "payment" consumes. It returns the trace id of the work once the
// payment handler has run.
func crossHops(t *testing.T, tel *telemetry.Telemetry) trace.TraceID {
	t.Helper()
	order, catalog, payment := tel.ForService("order"), tel.ForService("catalog"), tel.ForService("payment")

	srv := grpcserver.New()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(telemetry.NewContext(context.Background(), catalog))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, lis) }()
	t.Cleanup(func() { stopServe(); <-served })
	cc, err := resilience.Dial(lis.Addr().String(), resilience.WithName("catalog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })

	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := messaging.DeclareStreams(context.Background(), js, messaging.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	orderBus, paymentBus := messaging.New(js, "order"), messaging.New(js, "payment")
	handled := make(chan struct{}, 1)
	consumer, err := paymentBus.NewConsumer(context.Background(),
		messaging.ConsumerConfig{Durable: "payment-commands", Subjects: []string{"cmd.payment.>"}},
		messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
			_, span := otel.Tracer("test").Start(ctx, "authorize card")
			span.End()
			handled <- struct{}{}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	consumeCtx, stopConsume := context.WithCancel(telemetry.NewContext(context.Background(), payment))
	consumed := make(chan error, 1)
	go func() { consumed <- consumer.Run(consumeCtx) }()
	t.Cleanup(func() { stopConsume(); <-consumed })

	ctx, root := otel.Tracer("test").Start(telemetry.NewContext(context.Background(), order), "place order")
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("gRPC hop: %v", err)
	}
	if _, err := orderBus.SendCommand(ctx, "cmd.payment.authorize", "", &paymentv1.AuthorizePayment{OrderId: "o-1"}); err != nil {
		t.Fatalf("NATS hop: %v", err)
	}
	root.End()
	select {
	case <-handled:
	case <-time.After(telemetrytest.DefaultWait):
		t.Fatal("payment did not handle the command")
	}
	return root.SpanContext().TraceID()
}

func TestTraceCrossesGRPCAndNATSHops(t *testing.T) {
	rec := telemetrytest.Start(t, "shopd")
	before := telemetrytest.Scrape(t, rec.Telemetry().MetricsHandler())
	id := crossHops(t, rec.Telemetry())

	spans := rec.WaitFor(t, func(s telemetrytest.Spans) bool {
		return len(s.Named("authorize card")) == 1 && len(s.Named("process cmd.payment.authorize")) == 1
	}).InTrace(id)
	telemetrytest.RequireOneTrace(t, spans)
	telemetrytest.RequireServices(t, spans, "order", "catalog", "payment")

	root := telemetrytest.RequireSpan(t, spans, "place order")
	send := telemetrytest.RequireSpan(t, spans, "send cmd.payment.authorize")
	process := telemetrytest.RequireSpan(t, spans, "process cmd.payment.authorize")
	work := telemetrytest.RequireSpan(t, spans, "authorize card")
	telemetrytest.RequireChildOf(t, send, root)
	telemetrytest.RequireCausedBy(t, process, send)
	telemetrytest.RequireChildOf(t, work, process)
	for name, want := range map[string]string{
		"place order":                   "order",
		"send cmd.payment.authorize":    "order",
		"process cmd.payment.authorize": "payment",
		"authorize card":                "payment",
	} {
		if got := telemetrytest.ServiceOf(telemetrytest.RequireSpan(t, spans, name)); got != want {
			t.Errorf("span %q from %q, want %q", name, got, want)
		}
	}
	for _, sp := range []tracetest.SpanStub{send, process} {
		for _, key := range []string{"messaging.system", "messaging.operation.name", "messaging.operation.type", "messaging.destination.name", "messaging.message.id"} {
			if !hasAttr(sp, key) {
				t.Errorf("span %q lacks messaging attribute %s", sp.Name, key)
			}
		}
	}
	if !hasAttr(process, "messaging.consumer.group.name") {
		t.Errorf("consumer span lacks messaging.consumer.group.name")
	}

	// The same hop measured: RED per consumer and per published subject.
	processed := func(m telemetrytest.Metrics) float64 {
		return m.Value("messaging_process_duration_seconds", "messaging_consumer_group_name", "payment-commands")
	}
	sent := func(m telemetrytest.Metrics) float64 {
		return m.Value("messaging_client_operation_duration_seconds", "messaging_destination_name", "cmd.payment.authorize")
	}
	telemetrytest.WaitForMetrics(t, rec.Telemetry().MetricsHandler(), func(m telemetrytest.Metrics) bool {
		return processed(m)-processed(before) == 1 && sent(m)-sent(before) == 1
	})

	for _, sp := range spans.Named("grpc.health.v1.Health/Check") {
		want := "order"
		if sp.SpanKind == trace.SpanKindServer {
			want = "catalog"
		}
		if got := telemetrytest.ServiceOf(sp); got != want {
			t.Errorf("%s span of the health check from %q, want %q", sp.SpanKind, got, want)
		}
		telemetrytest.RequireDescendantOf(t, spans, sp, root)
	}
}

// The same request exported over OTLP to a real Jaeger, then read back through its
// query API. make test-jaeger starts Jaeger and sets SHOP_TEST_JAEGER_URL.
func TestJaegerStoresOneTraceAcrossServices(t *testing.T) {
	jaegerURL := telemetrytest.JaegerURL(t)
	endpoint := os.Getenv("SHOP_OTLP_ENDPOINT")
	if endpoint == "" {
		endpoint = "127.0.0.1:4317"
	}
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName: "telemetry-test", OTLPEndpoint: endpoint, SampleRatio: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	id := crossHops(t, tel)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+telemetrytest.DefaultWait)
	defer cancel()
	if err := tel.ForceFlush(ctx); err != nil {
		t.Fatalf("flush to %s: %v", endpoint, err)
	}
	tr := telemetrytest.WaitForJaegerTrace(t, jaegerURL, id, "order", "catalog", "payment")

	// The consumer span can end, and so be exported, after the spans above: wait for
	// it (bounded), flushing again, before judging the trace.
	var process telemetrytest.JaegerSpan
	for deadline := time.Now().Add(telemetrytest.DefaultWait); ; {
		for _, s := range tr.Spans {
			if s.OperationName == "process cmd.payment.authorize" {
				process = s
			}
		}
		if process.SpanID != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
		_ = tel.ForceFlush(ctx)
		if got, err := telemetrytest.FetchJaegerTrace(ctx, jaegerURL, id); err == nil {
			tr = got
		}
	}
	if process.SpanID == "" {
		t.Fatalf("jaeger trace lacks the consumer span: %+v", tr)
	}
	byID := make(map[string]telemetrytest.JaegerSpan)
	for _, s := range tr.Spans {
		byID[s.SpanID] = s
	}
	if len(process.References) == 0 || byID[process.References[0].SpanID].OperationName != "send cmd.payment.authorize" {
		t.Errorf("consumer span does not reference the producer span: %+v", process.References)
	}
}

func hasAttr(sp tracetest.SpanStub, key string) bool {
	for _, kv := range sp.Attributes {
		if string(kv.Key) == key {
			return true
		}
	}
	return false
}
