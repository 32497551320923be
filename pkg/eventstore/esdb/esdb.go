// Package esdb is the EventStoreDB backend of eventstore.Store, for deployments that
// prefer a dedicated event database to JetStream. It lives apart so that binaries using
// JetStream do not link the EventStoreDB client.
package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/eventshop/eventshop/pkg/eventstore"
)

// Mapping (see ../README.md):
//   - stream "order-0195..." is the EventStoreDB stream of the same name; its by-category
//     system projection links every event into "$ce-order", read with link resolution;
//   - Version v is EventStoreDB revision v-1; NoStream, Any and exact versions map to
//     esdb.NoStream{}, esdb.Any{} and esdb.Revision(v-1);
//   - Position p is the revision p-1 of the link in "$ce-<category>";
//   - Event.ID must be a UUID (EventStoreDB event ids are UUIDs); Time and Metadata
//     travel as JSON user metadata, Data as binary content.

var _ eventstore.Store = (*Store)(nil)

// Store is an eventstore.Store on EventStoreDB. Category reads and subscriptions need
// the server's standard projections ($by_category) to run, and see events only once
// that projection has linked them: they lag appends slightly.
type Store struct {
	client *esdb.Client
	now    func() time.Time
}

// New returns a Store using client, which the caller owns and closes. It panics if
// client is nil.
func New(client *esdb.Client) *Store {
	if client == nil {
		panic("esdb: nil client")
	}
	return &Store{client: client, now: time.Now}
}

// Dial connects to the EventStoreDB at url (e.g. "esdb://127.0.0.1:2113?tls=false").
// It returns the client's configuration or connection error, wrapped.
func Dial(url string) (*esdb.Client, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("esdb: parse %q: %w", url, err)
	}
	c, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: connect: %w", err)
	}
	return c, nil
}

type userMetadata struct {
	Time     time.Time         `json:"time"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func hasCode(err error, code esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.IsErrorCode(code)
}

// Append implements eventstore.Store.Append; it returns the errors documented there,
// ErrInvalidEvent for an ID that is not a UUID, and wrapped client errors.
// Idempotence relies on EventStoreDB's own (reliable with an exact expected version,
// best effort with Any) plus a check of the events right after the expected version.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Version, events ...eventstore.Event) (eventstore.Version, error) {
	if _, _, err := eventstore.ParseStream(stream); err != nil {
		return 0, err
	}
	evs, err := eventstore.PrepareAppend(events, s.now())
	if err != nil {
		return 0, err
	}
	data := make([]esdb.EventData, len(evs))
	for i, e := range evs {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return 0, fmt.Errorf("%w: event id %q is not a UUID", eventstore.ErrInvalidEvent, e.ID)
		}
		meta, err := json.Marshal(userMetadata{Time: e.Time, Metadata: e.Metadata})
		if err != nil {
			return 0, fmt.Errorf("%w: metadata: %v", eventstore.ErrInvalidEvent, err)
		}
		data[i] = esdb.EventData{EventID: id, EventType: e.Type, ContentType: esdb.ContentTypeBinary, Data: e.Data, Metadata: meta}
	}
	var rev esdb.ExpectedRevision
	switch expected {
	case eventstore.Any:
		rev = esdb.Any{}
	case eventstore.NoStream:
		rev = esdb.NoStream{}
	default:
		rev = esdb.Revision(uint64(expected) - 1)
	}
	res, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: rev}, data...)
	if err == nil {
		return eventstore.Version(res.NextExpectedVersion + 1), nil
	}
	if !hasCode(err, esdb.ErrorCodeWrongExpectedVersion) {
		return 0, fmt.Errorf("esdb: append to %s: %w", stream, err)
	}
	actual, err := s.lastVersion(ctx, stream)
	if err != nil {
		return 0, err
	}
	if actual >= expected+eventstore.Version(len(evs)) {
		stored, err := s.ReadStream(ctx, stream, expected+1)
		if err != nil {
			return 0, err
		}
		same := len(stored) >= len(evs)
		for i := 0; same && i < len(evs); i++ {
			same = stored[i].ID == evs[i].ID
		}
		if same {
			return expected + eventstore.Version(len(evs)), nil
		}
	}
	return 0, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
}

func (s *Store) lastVersion(ctx context.Context, stream string) (eventstore.Version, error) {
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, fmt.Errorf("esdb: read last of %s: %w", stream, err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF), hasCode(err, esdb.ErrorCodeResourceNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("esdb: read last of %s: %w", stream, err)
	}
	return eventstore.Version(ev.OriginalEvent().EventNumber + 1), nil
}

func toEvent(r *esdb.RecordedEvent) (eventstore.Event, error) {
	e := eventstore.Event{
		ID:      r.EventID.String(),
		Type:    r.EventType,
		Data:    r.Data,
		Stream:  r.StreamID,
		Version: eventstore.Version(r.EventNumber + 1),
		Time:    r.CreatedDate,
	}
	if len(r.UserMetadata) > 0 {
		var m userMetadata
		if err := json.Unmarshal(r.UserMetadata, &m); err != nil {
			return e, fmt.Errorf("esdb: metadata of %s@%d: %w", r.StreamID, r.EventNumber, err)
		}
		e.Time, e.Metadata = m.Time.UTC(), m.Metadata
	}
	return e, nil
}

// ReadStream implements eventstore.Store.ReadStream; it returns the errors documented
// there, plus wrapped client errors.
func (s *Store) ReadStream(ctx context.Context, stream string, from eventstore.Version) ([]eventstore.Event, error) {
	if _, _, err := eventstore.ParseStream(stream); err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Revision(uint64(from) - 1)}, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("esdb: read %s: %w", stream, err)
	}
	defer rs.Close()
	var out []eventstore.Event
	for {
		r, err := rs.Recv()
		switch {
		case errors.Is(err, io.EOF):
			if len(out) == 0 {
				// A missing stream and a read past the end both end empty.
				if last, err := s.lastVersion(ctx, stream); err != nil {
					return nil, err
				} else if last == 0 {
					return nil, fmt.Errorf("%w: %s", eventstore.ErrStreamNotFound, stream)
				}
			}
			return out, nil
		case hasCode(err, esdb.ErrorCodeResourceNotFound):
			return nil, fmt.Errorf("%w: %s", eventstore.ErrStreamNotFound, stream)
		case err != nil:
			return nil, fmt.Errorf("esdb: read %s: %w", stream, err)
		}
		e, err := toEvent(r.Event)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

func categoryStream(category string) string { return "$ce-" + category }

// linked turns a resolved $ce link into an event positioned in its category; ok is
// false for a link whose event was deleted.
func linked(r *esdb.ResolvedEvent) (e eventstore.Event, ok bool, err error) {
	if r.Event == nil || r.Link == nil {
		return e, false, nil
	}
	e, err = toEvent(r.Event)
	e.Position = eventstore.Position(r.Link.EventNumber + 1)
	return e, err == nil, err
}

// ReadCategory implements eventstore.Store.ReadCategory on "$ce-<category>"; it returns
// the errors documented there, plus wrapped client errors.
func (s *Store) ReadCategory(ctx context.Context, category string, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	if err := eventstore.ValidateCategory(category); err != nil {
		return nil, err
	}
	count := uint64(math.MaxInt64)
	if limit > 0 {
		count = uint64(limit)
	}
	rs, err := s.client.ReadStream(ctx, categoryStream(category),
		esdb.ReadStreamOptions{From: esdb.Revision(uint64(after)), ResolveLinkTos: true}, count)
	if err != nil {
		return nil, fmt.Errorf("esdb: read category %s: %w", category, err)
	}
	defer rs.Close()
	var out []eventstore.Event
	for {
		r, err := rs.Recv()
		switch {
		case errors.Is(err, io.EOF), hasCode(err, esdb.ErrorCodeResourceNotFound):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("esdb: read category %s: %w", category, err)
		}
		e, ok, err := linked(r)
		if err != nil {
			return nil, err
		}
		if ok && e.Position > after {
			out = append(out, e)
		}
	}
}

// SubscribeCategory implements eventstore.Store.SubscribeCategory with a catch-up
// subscription to "$ce-<category>"; it returns the errors documented there, plus a
// wrapped error when the server drops the subscription.
func (s *Store) SubscribeCategory(ctx context.Context, category string, after eventstore.Position, h eventstore.Handler) error {
	if err := eventstore.ValidateCategory(category); err != nil {
		return err
	}
	var from esdb.StreamPosition = esdb.Start{}
	if after > 0 {
		// The subscription starts after this revision; the filter below also copes
		// with an inclusive start.
		from = esdb.Revision(uint64(after) - 1)
	}
	sub, err := s.client.SubscribeToStream(ctx, categoryStream(category),
		esdb.SubscribeToStreamOptions{From: from, ResolveLinkTos: true})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("esdb: subscribe to category %s: %w", category, err)
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case ev.SubscriptionDropped != nil:
			return fmt.Errorf("esdb: subscription to category %s dropped: %w", category, ev.SubscriptionDropped.Error)
		case ev.EventAppeared == nil:
			continue
		}
		e, ok, err := linked(ev.EventAppeared)
		if err != nil {
			return err
		}
		if !ok || e.Position <= after {
			continue
		}
		if err := h(ctx, e); err != nil {
			return fmt.Errorf("esdb: handler at %s v%d: %w", e.Stream, e.Version, err)
		}
		after = e.Position
	}
}
