package saga

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A saga outlives the request that started it: its commands are sent from replies,
// from timers and from a resume after a crash, and only the first comes with the
// starting trace on its context. So the trace context of Start is written into the
// SagaStarted event's metadata (every event carries the trace that moved the saga),
// and a command sent with no span of that trace on its context continues it anyway:
// one placed order stays one trace, retries and recoveries included.

// injectTrace writes ctx's trace context into an event's metadata.
func injectTrace(ctx context.Context, md map[string]string) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(md))
}

// originOf reads the trace context an event was written in; invalid if none.
func originOf(md map[string]string) trace.SpanContext {
	if len(md) == 0 {
		return trace.SpanContext{}
	}
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier(md))
	return trace.SpanContextFromContext(ctx)
}

// sendSpan starts the span of sending cmd for the saga in st. Its parent is ctx's span
// when that belongs to the saga's trace, else the saga's origin; a span of another
// trace on ctx (say, a reply whose sender lost the trace) is linked instead.
func (o *Orchestrator[T]) sendSpan(ctx context.Context, st *state, cmd *Command) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	parent := ctx
	cur := trace.SpanContextFromContext(ctx)
	if st.origin.IsValid() && cur.TraceID() != st.origin.TraceID() {
		if cur.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: cur}))
		}
		parent = trace.ContextWithRemoteSpanContext(ctx, st.origin)
	}
	name := "saga " + o.def.Name + " " + cmd.Step
	if cmd.Compensation {
		name += " undo"
	}
	if cmd.Attempt > 1 {
		name += " #" + strconv.Itoa(cmd.Attempt)
	}
	ctx, span := otel.Tracer(instrumentation).Start(parent, name, opts...)
	// Attributes only for a span that records them: the shop's samplers do not look
	// at them, and most commands are sent unsampled.
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("saga.definition", o.def.Name),
			attribute.String("saga.id", cmd.SagaID),
			attribute.String("saga.step", cmd.Step),
			attribute.Int("saga.attempt", cmd.Attempt),
			attribute.Bool("saga.compensation", cmd.Compensation),
			attribute.String("saga.command_id", cmd.ID),
		)
	}
	return ctx, span
}
