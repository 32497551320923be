package messaging

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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

// metricKey names one attribute set of the duration histograms: an operation
// ("process" or "send"), the subject, the consumer for process, and the outcome.
type metricKey struct{ operation, destination, group, outcome string }

// maxMetricSets bounds the attribute sets kept; past it (subjects nobody declared,
// sent on purpose to grow it) each record builds its set again.
const maxMetricSets = 4096

var (
	metricSets    sync.Map // metricKey → metric.MeasurementOption holding its attribute.Set
	metricSetsLen atomic.Int64
)

// recordDuration records the time since start on h under k's attributes. The set of
// each key is built once: building it per message (a slice, a sort, a hash) was
// about 1 % of the order pipeline's CPU and 3 % of its allocations.
func recordDuration(ctx context.Context, h metric.Float64Histogram, start time.Time, k metricKey) {
	h.Record(ctx, time.Since(start).Seconds(), metricSet(k))
}

func metricSet(k metricKey) metric.MeasurementOption {
	if o, ok := metricSets.Load(k); ok {
		return o.(metric.MeasurementOption)
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.name", k.operation),
		attribute.String("messaging.destination.name", k.destination),
	}
	if k.group != "" {
		attrs = append(attrs, attribute.String("messaging.consumer.group.name", k.group))
	}
	if k.outcome != "" {
		attrs = append(attrs, attribute.String("error.type", k.outcome))
	}
	o := metric.WithAttributeSet(attribute.NewSet(attrs...))
	if metricSetsLen.Load() < maxMetricSets {
		if _, loaded := metricSets.LoadOrStore(k, o); !loaded {
			metricSetsLen.Add(1)
		}
	}
	return o
}
