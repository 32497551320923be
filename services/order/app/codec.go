package app

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/services/order/domain"
)

// MetaSchemaVersion is the event metadata key holding the payload's schema version.
// An event stored without it is version 1.
const MetaSchemaVersion = "schema-version"

// ErrUnknownSchema reports a stored event whose schema version is newer than this
// build knows, or older than the oldest version an upcaster starts from.
var ErrUnknownSchema = errors.New("unknown event schema version")

// Upcaster turns the payload of one schema version of an event type into the payload
// of the next version.
type Upcaster func(data []byte) ([]byte, error)

// Codec turns order events into stored events and back. Stored events carry the
// protobuf full name as Type, the protobuf encoding as Data and the schema version in
// Metadata[MetaSchemaVersion]. On decode, a chain of upcasters lifts an old payload to
// the current version before it is unmarshalled.
//
// The current version of a type is 1 plus the highest fromVersion registered for it
// (1 when none is). Register every upcaster before the codec is used; a Codec is then
// safe for concurrent use.
type Codec struct {
	upcasters map[string]map[int]Upcaster
}

// NewCodec returns a codec with the upcasters of this build's event history. There
// are none yet: every order event type is at version 1.
func NewCodec() *Codec {
	return &Codec{upcasters: map[string]map[int]Upcaster{}}
}

// Register adds the upcaster that turns version fromVersion of eventType into
// fromVersion+1, making fromVersion+1 (at least) the type's current version. It
// panics when fromVersion is below 1, fn is nil, or an upcaster for that step already
// exists: those are wiring mistakes.
func (c *Codec) Register(eventType string, fromVersion int, fn func([]byte) ([]byte, error)) {
	if fromVersion < 1 || fn == nil {
		panic(fmt.Sprintf("order codec: bad upcaster for %s v%d", eventType, fromVersion))
	}
	steps := c.upcasters[eventType]
	if steps == nil {
		steps = map[int]Upcaster{}
		c.upcasters[eventType] = steps
	}
	if _, dup := steps[fromVersion]; dup {
		panic(fmt.Sprintf("order codec: second upcaster for %s v%d", eventType, fromVersion))
	}
	steps[fromVersion] = fn
}

// CurrentVersion returns the schema version Encode writes for eventType.
func (c *Codec) CurrentVersion(eventType string) int {
	v := 1
	for from := range c.upcasters[eventType] {
		v = max(v, from+1)
	}
	return v
}

// Encode returns the stored form of e with a fresh UUIDv7 as its ID. It returns an
// error only if e cannot be marshalled.
func (c *Codec) Encode(e domain.Event) (eventstore.Event, error) {
	data, err := proto.Marshal(e)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("encode %s: %w", domain.EventType(e), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("encode %s: event id: %w", domain.EventType(e), err)
	}
	t := domain.EventType(e)
	return eventstore.Event{
		ID:       id.String(),
		Type:     t,
		Data:     data,
		Metadata: map[string]string{MetaSchemaVersion: strconv.Itoa(c.CurrentVersion(t))},
	}, nil
}

// Decode returns the order event stored in se, upcast to the current version. An
// event of the order's saga, which shares the order's stream, is returned as the
// order event it means (see orderEventOf), or nil, with no error, when it means none.
// It returns domain.ErrInvalidEvent for a type that is not an order event or a payload
// that does not unmarshal, ErrUnknownSchema for a version it cannot lift, and an
// upcaster's error wrapped.
func (c *Codec) Decode(se eventstore.Event) (domain.Event, error) {
	if saga.IsEvent(se.Type) {
		return orderEventOf(se)
	}
	e, err := domain.NewEvent(se.Type)
	if err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", se.Stream, se.Version, err)
	}
	data, err := c.upcast(se)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("decode %s v%d (%s): %w: %w", se.Stream, se.Version, se.Type, domain.ErrInvalidEvent, err)
	}
	return e, nil
}

func (c *Codec) upcast(se eventstore.Event) ([]byte, error) {
	v := 1
	if s, ok := se.Metadata[MetaSchemaVersion]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("decode %s v%d (%s): schema version %q: %w", se.Stream, se.Version, se.Type, s, ErrUnknownSchema)
		}
		v = n
	}
	current := c.CurrentVersion(se.Type)
	if v > current {
		return nil, fmt.Errorf("decode %s v%d (%s): schema %d is newer than %d: %w", se.Stream, se.Version, se.Type, v, current, ErrUnknownSchema)
	}
	data := se.Data
	for ; v < current; v++ {
		up, ok := c.upcasters[se.Type][v]
		if !ok {
			return nil, fmt.Errorf("decode %s v%d (%s): no upcaster from schema %d: %w", se.Stream, se.Version, se.Type, v, ErrUnknownSchema)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("decode %s v%d (%s): upcast schema %d: %w", se.Stream, se.Version, se.Type, v, err)
		}
	}
	return data, nil
}
