package saga_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/telemetry/telemetrytest"
)

// Every command of a saga is sent in a span of the trace that started it, including
// a resend by a new instance after a crash, a retry driven by a timer, and a step
// answered by a reply that carries an unrelated trace (which is linked instead).
func TestSagaCommandsStayInTheStartingTrace(t *testing.T) {
	rec := telemetrytest.Start(t, "order")
	h := newHarness(t, testDefinition(2, 2))
	var sent []trace.SpanContext
	h.tr.OnSend = func(ctx context.Context, _ saga.Command) error {
		sent = append(sent, trace.SpanContextFromContext(ctx))
		return nil
	}

	ctx, place := otel.Tracer("test").Start(context.Background(), "place order")
	if err := h.o.Start(ctx, "s1", newData("s1")); err != nil {
		t.Fatal(err)
	}
	place.End()
	h.one()

	// A new instance resumes with a bare context and sends the step again.
	h.o = h.orchestrator()
	if err := h.o.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.one()
	// The step times out and is retried from a timer, again with a bare context.
	h.advance(stepTimeout)
	h.advance(stepTimeout)
	a2 := h.one()
	// A reply from a participant that started a trace of its own.
	rctx, foreign := otel.Tracer("test").Start(context.Background(), "participant replies")
	if err := h.o.HandleReply(rctx, saga.Reply{SagaID: a2.SagaID, ID: a2.ID + "/reply", CausationID: a2.ID, Msg: wrapperspb.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	foreign.End()
	h.one()

	spans := rec.Spans()
	root := telemetrytest.RequireSpan(t, spans, "place order")
	first := telemetrytest.RequireSpan(t, spans, "saga test a")
	telemetrytest.RequireChildOf(t, first, root)
	want := []string{"saga test a", "saga test a", "saga test a #2", "saga test b"}
	if len(sent) != len(want) {
		t.Fatalf("sent %d commands, want %d:\n%s", len(sent), len(want), spans.Tree())
	}
	for i, sc := range sent {
		if sc.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("command %d (%s) sent in trace %s, want the starting trace %s:\n%s", i, want[i], sc.TraceID(), root.SpanContext.TraceID(), spans.Tree())
		}
	}
	b := telemetrytest.RequireSpan(t, spans, "saga test b")
	if len(b.Links) != 1 || b.Links[0].SpanContext.SpanID() != foreign.SpanContext().SpanID() {
		t.Errorf("step b's span does not link the reply's foreign span: %+v", b.Links)
	}
	for _, s := range spans.WithPrefix("saga test") {
		if telemetrytest.ServiceOf(s) != "order" {
			t.Errorf("span %q from %q, want order", s.Name, telemetrytest.ServiceOf(s))
		}
	}
}
