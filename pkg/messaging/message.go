package messaging

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
)

// CloudEvents NATS protocol binding (binary content mode): every context attribute is a
// header named "ce-<attribute>", the payload is the protobuf wire encoding.
// Extension attribute names are lower-case alphanumerics, as the CloudEvents spec
// requires, hence "causationid" and not "causation-id".
const (
	HeaderSpecVersion   = "ce-specversion"   // always SpecVersion
	HeaderID            = "ce-id"            // message id; also Nats-Msg-Id for dedup
	HeaderType          = "ce-type"          // protobuf full name, e.g. eventshop.payment.v1.AuthorizePayment
	HeaderSource        = "ce-source"        // sending service, e.g. /eventshop/order
	HeaderTime          = "ce-time"          // RFC 3339 with nanoseconds, UTC
	HeaderSubject       = "ce-subject"       // what the message is about, e.g. the order id
	HeaderCausationID   = "ce-causationid"   // extension: id of the message that caused this one
	HeaderCorrelationID = "ce-correlationid" // extension: id shared by every message of one flow
	HeaderContentType   = "content-type"     // always ContentType
	// HeaderError is set on dead-lettered messages only: why no handler could process it.
	HeaderError = "ce-error"
	// Dead-letter bookkeeping, set on dead-lettered messages only.
	HeaderDLQConsumer   = "x-dlq-consumer"   // durable that gave up
	HeaderDLQSubject    = "x-dlq-subject"    // original NATS subject
	HeaderDLQDeliveries = "x-dlq-deliveries" // deliveries before giving up

	SpecVersion = "1.0"
	ContentType = "application/protobuf"
)

// Message is what a handler knows about a delivery besides its typed payload.
type Message struct {
	ID            string      // ce-id
	Type          string      // ce-type
	Source        string      // ce-source
	Subject       string      // ce-subject (may be empty)
	Time          time.Time   // ce-time
	CausationID   string      // ce-causationid (may be empty)
	CorrelationID string      // ce-correlationid (may be empty)
	Destination   string      // NATS subject it was published to, e.g. cmd.payment.authorize
	Header        nats.Header // every header as received, including trace context
	// Attempt counts deliveries to this consumer, starting at 1.
	Attempt int
}

// messageFrom reads the CloudEvents attributes of a delivery. A missing or malformed
// ce-time is left zero rather than failing: the payload is still usable.
func messageFrom(m jetstream.Msg) Message {
	msg := attributes(m.Headers(), m.Subject())
	if md, err := m.Metadata(); err == nil {
		msg.Attempt = int(md.NumDelivered)
	}
	return msg
}

// attributes reads the CloudEvents attributes from the headers of a message that
// arrived on subject; whatever the headers hold (they come from the bus, anyone's
// bytes), it returns a Message and never fails.
func attributes(h nats.Header, subject string) Message {
	msg := Message{
		ID:            h.Get(HeaderID),
		Type:          h.Get(HeaderType),
		Source:        h.Get(HeaderSource),
		Subject:       h.Get(HeaderSubject),
		CausationID:   h.Get(HeaderCausationID),
		CorrelationID: h.Get(HeaderCorrelationID),
		Destination:   subject,
		Header:        h,
		Attempt:       1,
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime)); err == nil {
		msg.Time = t
	}
	return msg
}

// headerCarrier lets the OpenTelemetry propagator read and write NATS headers.
// nats.Header keys are case-sensitive, and W3C keys are lower case on both sides.
type headerCarrier nats.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

func deadLetterSubject(subject string) string { return DLQPrefix + subject }
