// Package eventstore stores event-sourced streams: append with optimistic concurrency,
// read a stream back to rebuild an aggregate, read or follow a category from a checkpoint.
// JetStream is the default backend; an in-memory one serves unit tests; EventStoreDB lives in eventstore/esdb.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Store is an event store. Implementations are safe for concurrent use.
//
// Stream names are "<category>-<id>" (e.g. "order-0195f3..."); the category is the part
// before the first '-'. Categories are made of ASCII letters, digits and '_'; ids may
// not contain whitespace, '.', '*' or '>' (they become NATS subject tokens).
type Store interface {
	// Append appends events to stream as one all-or-nothing commit and returns the
	// stream's version after the append (the version of the last appended event).
	//
	// expected is NoStream (the stream must have no events), Any (append whatever the
	// version) or the exact version the caller last read. A mismatch returns a
	// *WrongExpectedVersionError carrying the actual version (errors.Is(err,
	// ErrWrongExpectedVersion) holds). An append is idempotent by the ID of its first
	// event: repeating an append that already succeeded stores nothing and returns the
	// same version (backends bound how long they remember, see their docs).
	// Invalid stream names return ErrInvalidStream; empty, oversized or malformed
	// event lists return ErrInvalidEvent.
	Append(ctx context.Context, stream string, expected Version, events ...Event) (Version, error)

	// ReadStream returns the events of stream whose version is >= from, in version
	// order (from 0 or 1 reads the whole stream). A stream without events returns
	// ErrStreamNotFound; from beyond the last version returns no events and no error.
	// Invalid stream names return ErrInvalidStream.
	ReadStream(ctx context.Context, stream string, from Version) ([]Event, error)

	// ReadCategory returns up to limit events (all when limit <= 0) of every stream in
	// category, in the order they were stored, starting after the checkpoint after
	// (Start reads from the beginning). Each event carries its Position; pass the last
	// one back to continue. A category with no events returns no events and no error.
	// An invalid category returns ErrInvalidStream.
	ReadCategory(ctx context.Context, category string, after Position, limit int) ([]Event, error)

	// SubscribeCategory delivers to h, one at a time and in order, every event of
	// category after the checkpoint after: first the stored ones (catch-up), then new
	// ones as they are appended (live), with no gap and no duplicate between the two.
	// It blocks until ctx ends, returning ctx.Err(), or until h returns an error, which
	// it returns wrapped. Resuming from the Position of the last event h accepted
	// continues exactly where it stopped. An invalid category returns ErrInvalidStream.
	SubscribeCategory(ctx context.Context, category string, after Position, h Handler) error
}

// Handler receives events from SubscribeCategory. Returning an error ends the
// subscription; the event is not considered consumed.
type Handler func(ctx context.Context, e Event) error

// handle calls h, wrapping its error with the event it failed on: the one form of a
// handler error of every subscription of this package.
func handle(ctx context.Context, h Handler, e Event) error {
	if err := h(ctx, e); err != nil {
		return fmt.Errorf("eventstore: handler at %s v%d: %w", e.Stream, e.Version, err)
	}
	return nil
}

// Version is the 1-based number of an event within its stream. A stream's version is
// the version of its last event; 0 means the stream has no events.
type Version uint64

const (
	// NoStream, as an expected version, requires the stream to have no events.
	NoStream Version = 0
	// Any, as an expected version, appends whatever the stream's version is.
	Any Version = math.MaxUint64
)

// String renders expected-version sentinels readably in errors and logs.
func (v Version) String() string {
	switch v {
	case Any:
		return "any"
	case NoStream:
		return "no-stream"
	}
	return fmt.Sprintf("%d", uint64(v))
}

// Position is an opaque, totally ordered checkpoint within one category: a later event
// of the category always has a greater Position. Store it (it fits a SQL BIGINT as
// int64(p) up to 2^63-1, or NUMERIC) and pass it back to resume. Positions of
// different categories or backends are not comparable, and they need not be dense.
type Position uint64

// Start is the checkpoint before the first event of any category.
const Start Position = 0

// MaxEventsPerAppend bounds one commit. The JetStream backend numbers events within a
// commit in the low 16 bits of Position.
const MaxEventsPerAppend = 1<<16 - 1

// Well-known Metadata keys. The trace keys use W3C names so that Metadata can be used
// directly as an OpenTelemetry propagation.MapCarrier.
const (
	MetaCausationID   = "causation-id"
	MetaCorrelationID = "correlation-id"
	MetaTraceParent   = "traceparent"
	MetaTraceState    = "tracestate"
)

// Event is one stored fact. Callers set ID, Type, Data, Metadata and optionally Time;
// the store sets Stream and Version, and Position on category reads and subscriptions
// (other reads may leave Position zero).
type Event struct {
	// ID identifies the event uniquely (a UUID is typical). Appends are deduplicated
	// by the ID of their first event.
	ID string
	// Type names the payload, e.g. the protobuf full name "eventshop.order.v1.OrderPlaced".
	Type string
	// Time is when the event happened; Append sets it to now when zero.
	Time time.Time
	// Metadata carries trace context, causation and correlation ids (see Meta* keys).
	Metadata map[string]string
	// Data is the serialized payload (protobuf); the store never interprets it.
	Data []byte

	Stream   string
	Version  Version
	Position Position
}

var (
	// ErrWrongExpectedVersion matches (errors.Is) every *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")
	// ErrUnavailable marks (errors.Is) an error of a backend that could not answer
	// at that moment: no stream leader during a failover, no responders, a timeout,
	// a connection being re-established. The same call may succeed later, so callers
	// answer it as retryable, never as an internal fault.
	ErrUnavailable = errors.New("eventstore: unavailable")
	// ErrStreamNotFound is returned when reading a stream that has no events.
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrInvalidStream is returned for a malformed stream or category name.
	ErrInvalidStream = errors.New("eventstore: invalid stream name")
	// ErrInvalidEvent is returned for an empty, oversized or malformed append.
	ErrInvalidEvent = errors.New("eventstore: invalid event")
)

// WrongExpectedVersionError reports an optimistic-concurrency conflict: the stream was
// at Actual, not at Expected. Reload the stream and decide again.
type WrongExpectedVersionError struct {
	Stream   string
	Expected Version
	Actual   Version
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version for %s: expected %s, actual %d",
		e.Stream, e.Expected, uint64(e.Actual))
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) hold.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// ParseStream splits a stream name into category and id. It returns ErrInvalidStream
// when the name is not "<category>-<id>" with a valid category and id.
func ParseStream(stream string) (category, id string, err error) {
	category, id, ok := strings.Cut(stream, "-")
	if !ok || id == "" {
		return "", "", fmt.Errorf("%w: %q is not <category>-<id>", ErrInvalidStream, stream)
	}
	if err := ValidateCategory(category); err != nil {
		return "", "", err
	}
	if strings.ContainsAny(id, ".*> \t\r\n") {
		return "", "", fmt.Errorf("%w: id of %q contains one of . * > or whitespace", ErrInvalidStream, stream)
	}
	return category, id, nil
}

// ValidateCategory returns ErrInvalidStream unless category is non-empty ASCII letters,
// digits and '_'.
func ValidateCategory(category string) error {
	if category == "" {
		return fmt.Errorf("%w: empty category", ErrInvalidStream)
	}
	for _, r := range category {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("%w: category %q may hold only letters, digits and _", ErrInvalidStream, category)
		}
	}
	return nil
}

// PrepareAppend checks an append's events and returns copies with Time defaulted to
// now (UTC). It returns ErrInvalidEvent for no events, more than MaxEventsPerAppend,
// an empty ID or Type, or an ID repeated within the append. Backends call it first.
func PrepareAppend(events []Event, now time.Time) ([]Event, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: nothing to append", ErrInvalidEvent)
	}
	if len(events) > MaxEventsPerAppend {
		return nil, fmt.Errorf("%w: %d events in one append, at most %d", ErrInvalidEvent, len(events), MaxEventsPerAppend)
	}
	seen := make(map[string]struct{}, len(events))
	out := make([]Event, len(events))
	for i, e := range events {
		if e.ID == "" || e.Type == "" {
			return nil, fmt.Errorf("%w: event %d needs an ID and a Type", ErrInvalidEvent, i)
		}
		if _, dup := seen[e.ID]; dup {
			return nil, fmt.Errorf("%w: event id %s repeated in one append", ErrInvalidEvent, e.ID)
		}
		seen[e.ID] = struct{}{}
		if e.Time.IsZero() {
			e.Time = now
		}
		e.Time = e.Time.UTC()
		e.Stream, e.Version, e.Position = "", 0, 0
		out[i] = e
	}
	return out, nil
}
