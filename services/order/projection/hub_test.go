package projection

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/order/domain"
)

// pending reports whether s has a notification waiting, without waiting for one.
func pending(s *Subscription) bool {
	select {
	case _, ok := <-s.C:
		return ok
	default:
		return false
	}
}

func TestHubCoalescesAndNeverBlocks(t *testing.T) {
	t.Parallel()
	h := NewHub()
	a, b, a2 := h.Subscribe("a"), h.Subscribe("b"), h.Subscribe("a")
	defer b.Close()

	// Nobody reads: publishing must still return, and the notifications coalesce.
	for range 1000 {
		h.Publish("a", "c")
	}
	if !pending(a) || pending(a) {
		t.Fatal("a: want exactly one coalesced notification")
	}
	if !pending(a2) {
		t.Fatal("a's second subscriber was not notified")
	}
	if pending(b) {
		t.Fatal("b was notified of a's change")
	}
	if h.Watchers() != 3 {
		t.Fatalf("Watchers() = %d, want 3", h.Watchers())
	}

	a.Close()
	a.Close() // harmless
	if _, ok := <-a.C; ok {
		t.Fatal("a closed subscription still delivers")
	}
	h.Publish("a")
	if !pending(a2) {
		t.Fatal("closing one subscriber silenced another of the same order")
	}

	h.PublishAll()
	if !pending(b) || !pending(a2) {
		t.Fatal("PublishAll missed a subscriber")
	}

	h.Close()
	if _, ok := <-b.C; ok {
		t.Fatal("Close left b open")
	}
	if _, ok := <-h.Subscribe("d").C; ok {
		t.Fatal("a subscription to a closed hub is open")
	}
	a2.Close() // after the hub's Close: harmless
	if h.Watchers() != 0 {
		t.Fatalf("Watchers() = %d after Close, want 0", h.Watchers())
	}
}

// The projector notifies after the commit, so the notified watcher reads the change.
func TestProjectorPublishesCommittedOrders(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		hub := NewHub()
		p := newTestProjector(t, db, store, WithHub(hub))
		rng := rand.New(rand.NewPCG(7, 7))
		a, other := orderID(rng, 1), orderID(rng, 2)
		sub, otherSub := hub.Subscribe(a), hub.Subscribe(other)
		defer sub.Close()
		defer otherSub.Close()
		p.beforeCommit = func([]eventstore.Event) error {
			if pending(sub) {
				t.Error("notified before the commit")
			}
			return nil
		}
		r := startProjector(t, p)

		h := history(t, rng, a, "user-1")
		last := appendAll(ctx, t, store, a, h, epoch)
		q := NewQueries(db)
		for seen := int64(0); seen < int64(len(h)); {
			select {
			case <-sub.C:
			case <-time.After(time.Minute):
				t.Fatalf("no notification after version %d of %d", seen, len(h))
			}
			o, err := q.GetOrder(ctx, a)
			if err != nil {
				t.Fatalf("notified, but the row is not readable: %v", err)
			}
			seen = o.GetVersion()
		}
		r.waitFor(t, last)
		if pending(otherSub) {
			t.Fatal("an order without events was notified")
		}
	})
}

// An event that means nothing to the order (a saga step its decoder maps to nil)
// moves the row's version but tells no watcher: there is nothing new to show.
func TestProjectorNotifiesOnlyVisibleChanges(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		hub := NewHub()
		const stepType = "test.v1.SagaStepStarted"
		p := newTestProjector(t, db, store, WithHub(hub), WithDecoder(func(e eventstore.Event) (domain.Event, error) {
			if e.Type == stepType {
				return nil, nil
			}
			return decode(e)
		}))
		r := startProjector(t, p)
		rng := rand.New(rand.NewPCG(9, 9))
		a := orderID(rng, 1)
		h := history(t, rng, a, "user-1")
		sub := hub.Subscribe(a)
		defer sub.Close()
		r.waitFor(t, appendEvent(ctx, t, store, a, 1, h[0], epoch))
		if !pending(sub) {
			t.Fatal("placing the order notified no watcher")
		}
		if _, err := store.Append(ctx, Category+"-"+a, 1, eventstore.Event{ID: a + "-step", Type: stepType, Time: epoch}); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, head(ctx, t, store))
		if o, err := NewQueries(db).GetOrder(ctx, a); err != nil || o.GetVersion() != 2 {
			t.Fatalf("row after the step: %v, %v; want version 2", o, err)
		}
		if pending(sub) {
			t.Fatal("a step that changes nothing shown notified a watcher")
		}
	})
}
