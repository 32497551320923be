package messaging

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Outcomes recorded as error.type on the messaging duration histograms; absent when
// the operation succeeded. Few values on purpose: they are metric labels.
const (
	outcomeHandlerError = "handler_error" // the handler failed; retried or dead-lettered
	outcomeDeadLettered = "dead_lettered" // never reached a handler (malformed, unknown type, over MaxDeliver)
	outcomePublishError = "publish_error"
)

// instruments are the RED metrics of the bus, following the OpenTelemetry messaging
// conventions: a histogram's count is the rate, error.type splits out the errors.
type instruments struct {
	process metric.Float64Histogram // messaging.process.duration, per consumer and subject
	send    metric.Float64Histogram // messaging.client.operation.duration, per subject
}

var (
	instOnce sync.Once
	inst     *instruments
)

// meterInstruments creates the instruments once on the global meter provider, which
// forwards to whatever provider is installed later.
func meterInstruments() *instruments {
	instOnce.Do(func() {
		m := otel.Meter(instrumentation)
		var errs []error
		i := &instruments{}
		var err error
		if i.process, err = m.Float64Histogram("messaging.process.duration", metric.WithUnit("s"),
			metric.WithDescription("Time to handle and settle one delivered message.")); err != nil {
			i.process, _ = noop.Meter{}.Float64Histogram("")
			errs = append(errs, err)
		}
		if i.send, err = m.Float64Histogram("messaging.client.operation.duration", metric.WithUnit("s"),
			metric.WithDescription("Time to publish one message until JetStream acknowledged it.")); err != nil {
			i.send, _ = noop.Meter{}.Float64Histogram("")
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			otel.Handle(errors.Join(errs...))
		}
		inst = i
	})
	return inst
}

func recordDuration(ctx context.Context, h metric.Float64Histogram, start time.Time, outcome string, attrs ...attribute.KeyValue) {
	attrs = append(attrs, attribute.String("messaging.system", "nats"))
	if outcome != "" {
		attrs = append(attrs, attribute.String("error.type", outcome))
	}
	h.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
}
