package messaging_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/poll"
)

// installTracing sets a recording global tracer provider and the W3C propagator for
// the duration of the test.
func installTracing(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	return exp
}

func findSpan(exp *tracetest.InMemoryExporter, name string) (tracetest.SpanStub, bool) {
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestTraceContextSurvivesAHop(t *testing.T) {
	exp := installTracing(t)
	e := newEnv(t)
	ctx := context.Background()

	type seen struct {
		span        trace.SpanContext
		traceparent string
	}
	handled := make(chan seen, 1)
	c, err := e.bus.NewConsumer(ctx, fastConfig(durable, "cmd.payment.>"),
		messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
			// What the handler publishes continues the same trace.
			if _, err := e.bus.PublishEvent(ctx, "evt.payment.authorized", "", &paymentv1.PaymentAuthorized{OrderId: cmd.GetOrderId()}, messaging.CausedBy(m)); err != nil {
				return err
			}
			handled <- seen{trace.SpanContextFromContext(ctx), m.Header.Get("traceparent")}
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	run(t, c)

	ctx, root := otel.Tracer("test").Start(ctx, "place order")
	id, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize())
	root.End()
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	got := receive(t, handled, "handler")
	if got.traceparent == "" {
		t.Fatal("no traceparent header")
	}

	var producer, consumer, reply tracetest.SpanStub
	poll.Until(t, "spans", func() bool {
		var ok1, ok2, ok3 bool
		producer, ok1 = findSpan(exp, "send cmd.payment.authorize")
		consumer, ok2 = findSpan(exp, "process cmd.payment.authorize")
		reply, ok3 = findSpan(exp, "send evt.payment.authorized")
		return ok1 && ok2 && ok3
	})

	if producer.SpanKind != trace.SpanKindProducer || consumer.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kinds = %v, %v; want producer, consumer", producer.SpanKind, consumer.SpanKind)
	}
	traceID := root.SpanContext().TraceID()
	for _, s := range []tracetest.SpanStub{producer, consumer, reply} {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q has trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
	}
	if producer.Parent.SpanID() != root.SpanContext().SpanID() {
		t.Error("producer span is not a child of the caller's span")
	}
	if consumer.Parent.SpanID() != producer.SpanContext.SpanID() || !consumer.Parent.IsRemote() {
		t.Error("consumer span is not a remote child of the producer span")
	}
	if reply.Parent.SpanID() != consumer.SpanContext.SpanID() {
		t.Error("the handler's publish is not a child of the consumer span")
	}
	if want := "00-" + traceID.String() + "-" + producer.SpanContext.SpanID().String() + "-01"; got.traceparent != want {
		t.Errorf("traceparent = %q, want %q", got.traceparent, want)
	}
	if got.span.SpanID() != consumer.SpanContext.SpanID() {
		t.Error("the handler's context does not carry the consumer span")
	}
	for key, want := range map[string]string{
		"messaging.system":           "nats",
		"messaging.destination.name": "cmd.payment.authorize",
		"messaging.message.id":       id,
	} {
		if got := attr(producer, key); got != want {
			t.Errorf("producer %s = %q, want %q", key, got, want)
		}
		if got := attr(consumer, key); got != want {
			t.Errorf("consumer %s = %q, want %q", key, got, want)
		}
	}
}
