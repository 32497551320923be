package messaging

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/resilience"
)

const instrumentation = "github.com/eventshop/eventshop/pkg/messaging"

// Publisher is the one call the bus needs from JetStream. The default is the
// resilience publish wrapper (deadline, bulkhead, breaker, retry); any implementation
// must keep the message headers, because Nats-Msg-Id makes retries safe.
type Publisher interface {
	Publish(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Bus sends commands and publishes events on behalf of one service, and builds the
// consumers of that service. It is safe for concurrent use.
type Bus struct {
	js      jetstream.JetStream
	pub     Publisher
	resOpts []resilience.Option
	source  string
	now     func() time.Time
}

// BusOption configures a Bus.
type BusOption func(*Bus)

// WithPublisher replaces the default resilience publisher, e.g. with one shared by
// several buses of a process. It must keep message headers: Nats-Msg-Id makes retries safe.
func WithPublisher(p Publisher) BusOption { return func(b *Bus) { b.pub = p } }

// New returns a bus that sends as service (ce-source "/eventshop/<service>").
// It panics if js is nil or service is empty: that is a wiring mistake.
func New(js jetstream.JetStream, service string, opts ...BusOption) *Bus {
	if js == nil || service == "" {
		panic("messaging: New needs a JetStream and a service name")
	}
	b := &Bus{js: js, source: "/eventshop/" + service, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	if b.pub == nil {
		b.pub = defaultPublisher(js, b.resOpts)
	}
	return b
}

// Source is the ce-source this bus stamps on what it sends.
func (b *Bus) Source() string { return b.source }

// SendOption sets optional CloudEvents attributes of one message.
type SendOption func(*nats.Header)

// WithSubject sets ce-subject, what the message is about (usually the order id).
func WithSubject(s string) SendOption {
	return func(h *nats.Header) { setNonEmpty(*h, HeaderSubject, s) }
}

// WithCausationID sets ce-causationid, the id of the message that caused this one.
func WithCausationID(id string) SendOption {
	return func(h *nats.Header) { setNonEmpty(*h, HeaderCausationID, id) }
}

// WithCorrelationID sets ce-correlationid, shared by every message of one flow.
func WithCorrelationID(id string) SendOption {
	return func(h *nats.Header) { setNonEmpty(*h, HeaderCorrelationID, id) }
}

// CausedBy marks a message as the consequence of m: its causation id is m.ID and it
// keeps m's correlation id (or starts one at m.ID), and its ce-subject unless set later.
func CausedBy(m Message) SendOption {
	return func(h *nats.Header) {
		setNonEmpty(*h, HeaderCausationID, m.ID)
		corr := m.CorrelationID
		if corr == "" {
			corr = m.ID
		}
		setNonEmpty(*h, HeaderCorrelationID, corr)
		if h.Get(HeaderSubject) == "" {
			setNonEmpty(*h, HeaderSubject, m.Subject)
		}
	}
}

func setNonEmpty(h nats.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// SendCommand publishes a command on subject cmd.<service>.<verb> and returns its id.
// Pass a deterministic id (e.g. saga id + step + attempt) so a resend is deduplicated;
// an empty id gets a new UUIDv7. It returns ErrBadSubject for a subject outside cmd.,
// or the publisher's error (the command may then be resent with the same id).
func (b *Bus) SendCommand(ctx context.Context, subject, id string, msg proto.Message, opts ...SendOption) (string, error) {
	if !strings.HasPrefix(subject, CommandPrefix) {
		return "", fmt.Errorf("%w: command subject %q must start with %q", ErrBadSubject, subject, CommandPrefix)
	}
	return b.publish(ctx, subject, id, msg, opts)
}

// PublishEvent publishes an event on subject evt.<service>.<event> and returns its id.
// An empty id gets a new UUIDv7. It returns ErrBadSubject for a subject outside evt.,
// or the publisher's error.
func (b *Bus) PublishEvent(ctx context.Context, subject, id string, msg proto.Message, opts ...SendOption) (string, error) {
	if !strings.HasPrefix(subject, EventPrefix) {
		return "", fmt.Errorf("%w: event subject %q must start with %q", ErrBadSubject, subject, EventPrefix)
	}
	return b.publish(ctx, subject, id, msg, opts)
}

func (b *Bus) publish(ctx context.Context, subject, id string, msg proto.Message, opts []SendOption) (string, error) {
	nm, err := b.message(subject, id, msg, opts)
	if err != nil {
		return "", err
	}
	id = nm.Header.Get(HeaderID)
	start := time.Now()
	ctx, span := startSend(ctx, nm)
	defer span.End()

	if _, err := b.pub.Publish(ctx, nm); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		span.SetAttributes(attribute.String("error.type", outcomePublishError))
		recordDuration(ctx, meterInstruments().send, start, sendKey(subject, outcomePublishError))
		return "", fmt.Errorf("messaging: publish %s %s: %w", subject, id, err)
	}
	recordDuration(ctx, meterInstruments().send, start, sendKey(subject, ""))
	return id, nil
}

func sendKey(subject, outcome string) metricKey {
	return metricKey{operation: "send", destination: subject, outcome: outcome}
}

// message builds the NATS message of a command or event: protobuf payload,
// CloudEvents headers and Nats-Msg-Id = ce-id. An empty id gets a new UUIDv7.
func (b *Bus) message(subject, id string, msg proto.Message, opts []SendOption) (*nats.Msg, error) {
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("messaging: new id: %w", err)
		}
		id = u.String()
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("messaging: marshal %s: %w", subject, err)
	}
	// Room for the options' headers and the trace context too, so the map never
	// grows; the fixed headers' values share one array instead of a slice each.
	h := make(nats.Header, 16)
	vals := [...]string{
		SpecVersion, id, string(msg.ProtoReflect().Descriptor().FullName()), b.source,
		b.now().UTC().Format(time.RFC3339Nano), ContentType, id,
	}
	for i, k := range [...]string{HeaderSpecVersion, HeaderID, HeaderType, HeaderSource, HeaderTime, HeaderContentType, jetstream.MsgIDHeader} {
		h[k] = vals[i : i+1 : i+1]
	}
	for _, o := range opts {
		o(&h)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: data}, nil
}

// startSend starts the producer span of nm as a child of ctx's span and writes its
// trace context into nm's headers, so the consumer's span links to it.
func startSend(ctx context.Context, nm *nats.Msg) (context.Context, trace.Span) {
	ctx, span := otel.Tracer(instrumentation).Start(ctx, "send "+nm.Subject, trace.WithSpanKind(trace.SpanKindProducer))
	// Attributes only for a span that records them: the shop's samplers do not look
	// at them, and building them for every unsampled message was 2–3 % of the order
	// pipeline's allocations.
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.destination.name", nm.Subject),
			attribute.String("messaging.message.id", nm.Header.Get(HeaderID)),
			attribute.Int("messaging.message.body.size", len(nm.Data)),
			attribute.String("cloudevents.event_type", nm.Header.Get(HeaderType)),
		)
	}
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier(nm.Header))
	return ctx, span
}
