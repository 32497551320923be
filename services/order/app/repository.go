package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/order/domain"
)

// Category is the event-store category of order streams: order "<id>" lives in
// stream "order-<id>" (JetStream subject order.events.<id>).
const Category = "order"

// DefaultMaxAttempts bounds how often Update decides again after losing an
// optimistic-concurrency race.
const DefaultMaxAttempts = 5

// DefaultCacheSize is how many recently updated orders a Repository keeps in memory.
// An order lives about a dozen events, all within seconds, so this covers every
// order in flight at thousands of orders per second.
const DefaultCacheSize = 16384

// StreamName returns the event stream of an order.
func StreamName(orderID string) string { return Category + "-" + orderID }

// Repository loads and saves event-sourced orders. Update is the only way to change
// one: it loads the order, lets a closure decide, and appends the decided events with
// the loaded version as the expected version, so two writers can never both succeed
// from the same state. A Repository is safe for concurrent use.
//
// Orders it updated recently stay in a bounded in-memory cache with their version,
// so the next Update of a hot order decides without reading the store. The log stays
// the truth: a cached order only ever lags the store (another instance may have
// appended since), never leads it, and a lagging one is caught by the expected
// version of the append, after which the order is read again from the store.
type Repository struct {
	store       eventstore.Store
	codec       *Codec
	snaps       Snapshots
	every       int64
	maxAttempts int
	logger      *slog.Logger
	// cache holds the last stored state of recently updated orders; nil disables it.
	// Entries are never handed out: Update decides on a clone.
	cache     *lru.Cache[string, *domain.Order]
	cacheSize int
}

// RepositoryOption configures NewRepository.
type RepositoryOption func(*Repository)

// WithCodec replaces NewCodec() (e.g. to register upcasters).
func WithCodec(c *Codec) RepositoryOption {
	return func(r *Repository) {
		if c != nil {
			r.codec = c
		}
	}
}

// WithSnapshots stores a snapshot in s each time an order's version crosses a
// multiple of every, and loads from the latest snapshot. every <= 0 or a nil s
// disables snapshots.
func WithSnapshots(s Snapshots, every int) RepositoryOption {
	return func(r *Repository) {
		if s != nil && every > 0 {
			r.snaps, r.every = s, int64(every)
		} else {
			r.snaps, r.every = nil, 0
		}
	}
}

// WithMaxAttempts sets how many times Update decides before giving up with
// ErrConcurrency (DefaultMaxAttempts otherwise).
func WithMaxAttempts(n int) RepositoryOption {
	return func(r *Repository) {
		if n > 0 {
			r.maxAttempts = n
		}
	}
}

// WithLogger sets the logger for ignored snapshots; slog.Default() otherwise.
func WithLogger(l *slog.Logger) RepositoryOption {
	return func(r *Repository) {
		if l != nil {
			r.logger = l
		}
	}
}

// WithCacheSize sets how many orders the repository keeps in memory
// (DefaultCacheSize otherwise); n <= 0 turns the cache off, so every Update reads
// the store.
func WithCacheSize(n int) RepositoryOption {
	return func(r *Repository) { r.cacheSize = n }
}

// NewRepository returns a repository over store. It panics if store is nil.
func NewRepository(store eventstore.Store, opts ...RepositoryOption) *Repository {
	if store == nil {
		panic("order repository: nil event store")
	}
	r := &Repository{store: store, codec: NewCodec(), maxAttempts: DefaultMaxAttempts, logger: slog.Default(), cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o(r)
	}
	if r.cacheSize > 0 {
		r.cache, _ = lru.New[string, *domain.Order](r.cacheSize) // errs only for a size <= 0
	}
	return r
}

// Codec returns the codec the repository stores events with.
func (r *Repository) Codec() *Codec { return r.codec }

// Load returns the current state of order id, from the latest usable snapshot plus
// the events after it. It returns ErrNotFound when the order has no events, and
// event-store or decoding errors wrapped.
func (r *Repository) Load(ctx context.Context, id string) (*domain.Order, error) {
	o, err := r.load(ctx, id, true)
	if err != nil {
		return nil, err
	}
	if o.Version() == 0 {
		return nil, fmt.Errorf("load order %q: %w", id, ErrNotFound)
	}
	return o, nil
}

// LoadWithoutSnapshot is Load from the first event, ignoring any snapshot.
func (r *Repository) LoadWithoutSnapshot(ctx context.Context, id string) (*domain.Order, error) {
	o, err := r.load(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if o.Version() == 0 {
		return nil, fmt.Errorf("load order %q: %w", id, ErrNotFound)
	}
	return o, nil
}

// load returns the zero Order (version 0) for an order without events.
func (r *Repository) load(ctx context.Context, id string, useSnapshot bool) (*domain.Order, error) {
	o := &domain.Order{}
	if useSnapshot && r.snaps != nil {
		if snap := r.snapshot(ctx, id); snap != nil {
			o = snap
		}
	}
	found, err := r.replay(ctx, id, o.Version(), func(e domain.Event) error { return fold(o, e) })
	if err != nil {
		return nil, err
	}
	if !found {
		// No events means no order, whatever a snapshot claims.
		return &domain.Order{}, nil
	}
	return o, nil
}

// replay decodes the events of order id after version after and passes them to
// apply in order (nil for a saga event that means nothing to the order), checking that versions follow each other. found is false when the
// stream has no events at all.
func (r *Repository) replay(ctx context.Context, id string, after int64, apply func(domain.Event) error) (found bool, err error) {
	stored, err := r.store.ReadStream(ctx, StreamName(id), eventstore.Version(after+1))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load order %q: %w", id, err)
	}
	next := after + 1
	for _, se := range stored {
		if int64(se.Version) != next {
			return false, fmt.Errorf("load order %q: event version %d, want %d: %w", id, se.Version, next, domain.ErrInvalidEvent)
		}
		e, err := r.codec.Decode(se)
		if err != nil {
			return false, fmt.Errorf("load order %q: %w", id, err)
		}
		if err := apply(e); err != nil {
			return false, fmt.Errorf("load order %q: event %d: %w", id, se.Version, err)
		}
		next++
	}
	return true, nil
}

// snapshot returns the stored snapshot of id, or nil when there is none or it
// cannot be trusted (logged): a bad snapshot only costs a full read.
func (r *Repository) snapshot(ctx context.Context, id string) *domain.Order {
	data, ok, err := r.snaps.Get(ctx, id)
	if err != nil {
		r.logger.WarnContext(ctx, "order snapshot unreadable, loading from events", "order_id", id, "error", err)
		return nil
	}
	if !ok {
		return nil
	}
	o, err := decodeSnapshot(id, data)
	if err != nil {
		r.logger.WarnContext(ctx, "order snapshot ignored, loading from events", "order_id", id, "error", err)
		return nil
	}
	return o
}

// Update loads order id, calls decide with it, applies the returned events and
// appends them expecting the loaded version. When another writer appended first it
// reloads and decides again, up to the repository's attempt limit, so decide must be
// free of side effects and may run several times. For an order without events decide
// sees the zero Order (domain.StateNew) and its events create the stream.
//
// A cached order is decided on first. Should decide refuse it, the refusal may come
// from a state another instance has moved on from, so the order is read from the
// store and decided again before the refusal stands.
//
// Update returns the order after the append (the loaded order when decide returned
// no events). It returns decide's error as it is, ErrConcurrency when every attempt
// lost a race, ctx.Err() when cancelled while retrying, and event-store, decoding or
// apply errors wrapped.
func (r *Repository) Update(ctx context.Context, id string, decide func(o *domain.Order) ([]domain.Event, error)) (*domain.Order, error) {
	// Writers that just collided pause a short random time, growing with each
	// collision, so they do not collide again in lockstep.
	pauses := resilience.ContentionBackoff()
	for attempt := 1; ; attempt++ {
		o, fromCache := r.cached(id)
		if !fromCache {
			var err error
			if o, err = r.load(ctx, id, true); err != nil {
				return nil, err
			}
			r.remember(o)
		}
		events, err := decide(o)
		if err != nil && fromCache {
			r.forget(id)
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(events) == 0 {
			// A repeat: what it repeats is in every later state as well, so a
			// cached state that lags is as good as the store's.
			return o, nil
		}
		before := o.Version()
		stored, err := r.encode(ctx, id, o, events)
		if err != nil {
			return nil, err
		}
		_, err = r.store.Append(ctx, StreamName(id), eventstore.Version(before), stored...)
		if err == nil {
			r.remember(o)
			r.maybeSnapshot(ctx, before, o)
			return o, nil
		}
		r.forget(id)
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return nil, fmt.Errorf("update order %q: %w", id, err)
		}
		if attempt >= r.maxAttempts {
			return nil, fmt.Errorf("update order %q: %d attempts: %w: %w", id, attempt, ErrConcurrency, err)
		}
		if fromCache {
			continue // the cache lagged: no race with a writer to step out of
		}
		if err := pauses.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

// errExists reports that Create found the order's stream already there.
var errExists = errors.New("order exists")

// NewStreamAppend stores the first events of a new order's stream: decided are the
// order events, stored their encoded form. It returns the stream's version after the
// append, which may count events of its own besides them, and errExists when the
// stream exists.
type NewStreamAppend func(ctx context.Context, id string, decided []domain.Event, stored []eventstore.Event) (eventstore.Version, error)

// Create is Update for an order id that is new unless a retry placed it already:
// decide sees the zero Order without reading the store, and its events are stored
// expecting no stream, by appendNew when set (e.g. together with the start of the
// order's saga, SagaStartAppend), else alone; the events appendNew stores besides
// the order's count as versions of it. It returns errExists (wrapped) when the
// stream exists, and otherwise what Update returns.
func (r *Repository) Create(ctx context.Context, id string, decide func(o *domain.Order) ([]domain.Event, error), appendNew NewStreamAppend) (*domain.Order, error) {
	o := &domain.Order{}
	events, err := decide(o)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("create order %q: nothing decided: %w", id, domain.ErrInvalidOrder)
	}
	stored, err := r.encode(ctx, id, o, events)
	if err != nil {
		return nil, err
	}
	if appendNew != nil {
		v, err := appendNew(ctx, id, events, stored)
		if err != nil {
			return nil, fmt.Errorf("create order %q: %w", id, err)
		}
		for o.Version() < int64(v) {
			o.Pass()
		}
		r.remember(o)
		return o, nil
	}
	_, err = r.store.Append(ctx, StreamName(id), eventstore.NoStream, stored...)
	switch {
	case err == nil:
		r.remember(o)
		r.maybeSnapshot(ctx, 0, o)
		return o, nil
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return nil, fmt.Errorf("create order %q: %w", id, errExists)
	}
	return nil, fmt.Errorf("create order %q: %w", id, err)
}

// encode applies events to o and returns them as stored events carrying ctx's
// trace. Applying before appending rejects a decision the aggregate cannot fold,
// so nothing unloadable is ever stored.
func (r *Repository) encode(ctx context.Context, id string, o *domain.Order, events []domain.Event) ([]eventstore.Event, error) {
	stored := make([]eventstore.Event, 0, len(events))
	for _, e := range events {
		if err := o.Apply(e); err != nil {
			return nil, fmt.Errorf("update order %q: %w", id, err)
		}
		se, err := r.codec.Encode(e)
		if err != nil {
			return nil, fmt.Errorf("update order %q: %w", id, err)
		}
		// The projection and the saga follower continue this trace from here.
		otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(se.Metadata))
		stored = append(stored, se)
	}
	return stored, nil
}

// cached returns a clone of the cached state of order id.
func (r *Repository) cached(id string) (*domain.Order, bool) {
	if r.cache == nil {
		return nil, false
	}
	o, ok := r.cache.Get(id)
	if !ok {
		return nil, false
	}
	return o.Clone(), true
}

// remember caches a clone of o, the stored state of an order. An order without
// events is not cached: its stream is about to be created, or never will be.
func (r *Repository) remember(o *domain.Order) {
	if r.cache != nil && o.Version() > 0 {
		r.cache.Add(o.ID(), o.Clone())
	}
}

func (r *Repository) forget(id string) {
	if r.cache != nil {
		r.cache.Remove(id)
	}
}

// maybeSnapshot stores a snapshot when the append crossed a multiple of r.every.
// A failure is logged and otherwise ignored: snapshots are an optimisation.
func (r *Repository) maybeSnapshot(ctx context.Context, before int64, o *domain.Order) {
	if r.snaps == nil || before/r.every == o.Version()/r.every {
		return
	}
	data, err := encodeSnapshot(o)
	if err == nil {
		err = r.snaps.Put(ctx, o.ID(), data)
	}
	if err != nil {
		r.logger.WarnContext(ctx, "order snapshot not stored", "order_id", o.ID(), "version", o.Version(), "error", err)
	}
}

// RecordedEvent is one stored event of an order's stream, decoded. Event is nil for
// a step of the order's saga that means nothing to the order (see Codec.Decode).
type RecordedEvent struct {
	Version int64
	Time    time.Time
	Event   domain.Event
}

// History returns every event of order id, decoded and upcast, in order. It returns
// ErrNotFound when the order has no events, and event-store or decoding errors wrapped.
func (r *Repository) History(ctx context.Context, id string) ([]RecordedEvent, error) {
	stored, err := r.store.ReadStream(ctx, StreamName(id), 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, fmt.Errorf("history of order %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("history of order %q: %w", id, err)
	}
	out := make([]RecordedEvent, 0, len(stored))
	for _, se := range stored {
		e, err := r.codec.Decode(se)
		if err != nil {
			return nil, fmt.Errorf("history of order %q: %w", id, err)
		}
		out = append(out, RecordedEvent{Version: int64(se.Version), Time: se.Time, Event: e})
	}
	return out, nil
}
