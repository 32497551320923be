package saga

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentation = "github.com/eventshop/eventshop/pkg/saga"

// metrics are counted by the instance whose append recorded the transition, so
// several instances never count one saga twice. Stuck sagas are the exception: each
// instance that tracks a stuck saga reports it.
type metrics struct {
	attrs         metric.MeasurementOption
	started       metric.Int64Counter
	completed     metric.Int64Counter
	cancelled     metric.Int64Counter
	duration      metric.Float64Histogram
	compensations metric.Int64Counter
	retries       metric.Int64Counter
	stuck         metric.Int64UpDownCounter
	ignored       metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider, definition string, steps []string) *metrics {
	var m metric.Meter
	if mp != nil {
		m = mp.Meter(instrumentation)
	} else {
		m = otel.Meter(instrumentation)
	}
	// Instrument creation only fails for invalid names; ours are constants, and a
	// failed instrument is a no-op one, so the errors are deliberately dropped.
	ms := &metrics{attrs: metric.WithAttributes(attribute.String("saga.definition", definition))}
	ms.started, _ = m.Int64Counter("saga.started", metric.WithDescription("Sagas started."))
	ms.completed, _ = m.Int64Counter("saga.completed", metric.WithDescription("Sagas ended COMPLETED."))
	ms.cancelled, _ = m.Int64Counter("saga.cancelled", metric.WithDescription("Sagas ended CANCELLED."))
	ms.duration, _ = m.Float64Histogram("saga.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from start to end of a saga."))
	ms.compensations, _ = m.Int64Counter("saga.compensations",
		metric.WithDescription("Compensations started, by step (retries not counted)."))
	ms.retries, _ = m.Int64Counter("saga.retries",
		metric.WithDescription("Attempts after the first, of steps and compensations, by step."))
	ms.stuck, _ = m.Int64UpDownCounter("saga.stuck",
		metric.WithDescription("Unfinished sagas past their stuck deadline tracked by this instance."))
	ms.ignored, _ = m.Int64Counter("saga.replies.ignored",
		metric.WithDescription("Replies ignored: duplicate, late, for an unknown or ended saga, or answering no command (reason=uncaused)."))
	// Each series starts at zero, so a rate or an alert over it sees the first event
	// (a series born at its first increment hides that one) and finds the series
	// before anything happened.
	ctx := context.Background()
	for _, c := range []metric.Int64Counter{ms.started, ms.completed, ms.cancelled} {
		c.Add(ctx, 0, ms.attrs)
	}
	ms.stuck.Add(ctx, 0, ms.attrs)
	for _, step := range steps {
		ms.compensations.Add(ctx, 0, ms.attrs, metric.WithAttributes(attribute.String("saga.step", step)))
		ms.retries.Add(ctx, 0, ms.attrs, metric.WithAttributes(attribute.String("saga.step", step)))
	}
	for _, reason := range []string{"uncaused", "unmatched"} {
		ms.ignored.Add(ctx, 0, ms.attrs, metric.WithAttributes(attribute.String("reason", reason)))
	}
	return ms
}

// ignore counts an ignored reply; reason is "uncaused" for a reply that names no
// command (forged, or from a participant that does not say what it answers), and
// "unmatched" for the others.
func (m *metrics) ignore(ctx context.Context, reason string) {
	m.ignored.Add(ctx, 1, m.attrs, metric.WithAttributes(attribute.String("reason", reason)))
}

func (m *metrics) step(ctx context.Context, c metric.Int64Counter, step string) {
	c.Add(ctx, 1, m.attrs, metric.WithAttributes(attribute.String("saga.step", step)))
}

func (m *metrics) ended(ctx context.Context, s Status, d time.Duration) {
	if s == Completed {
		m.completed.Add(ctx, 1, m.attrs)
	} else {
		m.cancelled.Add(ctx, 1, m.attrs)
	}
	m.duration.Record(ctx, d.Seconds(), m.attrs, metric.WithAttributes(attribute.String("saga.status", s.String())))
}
