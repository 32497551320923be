package app_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// readCounter counts stream reads, the cost the aggregate cache saves.
type readCounter struct {
	eventstore.Store
	reads atomic.Int64
}

func (c *readCounter) ReadStream(ctx context.Context, stream string, from eventstore.Version) ([]eventstore.Event, error) {
	c.reads.Add(1)
	return c.Store.ReadStream(ctx, stream, from)
}

func TestCachedOrderIsUpdatedWithoutReadingTheStore(t *testing.T) {
	store := &readCounter{Store: eventstore.NewMemory()}
	repo := app.NewRepository(store)
	id := newID(t)
	run(t, t.Context(), repo, id, happyPath(id, "alice"))
	// Place reads once to find no stream; every later step decides on the cache.
	if got := store.reads.Load(); got != 1 {
		t.Errorf("%d stream reads for %d updates, want 1", got, len(happyPath(id, "alice")))
	}
	o, err := repo.Load(t.Context(), id)
	if err != nil || o.State() != domain.StateCompleted || o.Version() != 6 {
		t.Fatalf("Load = %v v%d, %v; want COMPLETED at version 6", o.State(), o.Version(), err)
	}

	uncached := app.NewRepository(store, app.WithCacheSize(0))
	store.reads.Store(0)
	id2 := newID(t)
	run(t, t.Context(), uncached, id2, happyPath(id2, "alice"))
	if got := store.reads.Load(); got != 6 {
		t.Errorf("%d stream reads without a cache, want 6", got)
	}
}

// Two repositories stand for two order service instances on one store: each one's
// cache lags behind what the other appended.
func TestLaggingCacheIsCaughtByTheExpectedVersion(t *testing.T) {
	store := eventstore.NewMemory()
	a, b := app.NewRepository(store), app.NewRepository(store)
	ctx := t.Context()
	id := newID(t)
	steps := happyPath(id, "alice")
	run(t, ctx, a, id, steps[:2]) // a caches PAYMENT_AUTHORIZED at version 2
	run(t, ctx, b, id, steps[2:3])

	// a's cache says PAYMENT_AUTHORIZED, where RecordShipmentCreated is illegal;
	// the store says INVENTORY_RESERVED, where it is next.
	o, err := a.Update(ctx, id, steps[3])
	if err != nil {
		t.Fatalf("update on a lagging cache: %v", err)
	}
	if o.State() != domain.StateShipmentCreated || o.Version() != 4 {
		t.Fatalf("state %v v%d, want SHIPMENT_CREATED v4", o.State(), o.Version())
	}

	// b's cache lags now (INVENTORY_RESERVED at 3), where a user may still cancel;
	// the store's SHIPMENT_CREATED refuses it, and that refusal stands.
	_, err = b.Update(ctx, id, func(o *domain.Order) ([]domain.Event, error) {
		return o.CancelByUser("alice", "lagging")
	})
	if !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("cancel through a lagging cache = %v, want the store's state to refuse it", err)
	}
	h, err := a.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range h {
		if e.Version != int64(i+1) {
			t.Fatalf("history versions %v not dense", h)
		}
	}
	if len(h) != 4 {
		t.Fatalf("%d events, want 4 (placed, authorized, reserved, shipped)", len(h))
	}
}

func TestRefusalOnTheStoresStateStands(t *testing.T) {
	store := eventstore.NewMemory()
	repo := app.NewRepository(store)
	id := newID(t)
	run(t, t.Context(), repo, id, happyPath(id, "alice"))
	_, err := repo.Update(t.Context(), id, func(o *domain.Order) ([]domain.Event, error) {
		return o.RecordInventoryReserved("res-2")
	})
	if !errors.Is(err, domain.ErrConflict) && !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("Update on a completed order = %v, want a refusal", err)
	}
}
