package projection

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
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
	for v := range int64(1000) {
		h.Publish(Change{OrderID: "a", From: v, To: v + 1}, Change{OrderID: "c", From: v, To: v + 1})
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
	// More changes than a subscription keeps: it is told to re-read instead.
	if changes, reread := a.Take(); len(changes) != 0 || !reread {
		t.Fatalf("after 1000 changes untaken: %d changes, reread %v; want none and a re-read", len(changes), reread)
	}
	if changes, reread := a.Take(); len(changes) != 0 || reread {
		t.Fatal("Take returned the same news twice")
	}

	a.Close()
	a.Close() // harmless
	if _, ok := <-a.C; ok {
		t.Fatal("a closed subscription still delivers")
	}
	a2.Take()
	h.Notify("a")
	if !pending(a2) {
		t.Fatal("closing one subscriber silenced another of the same order")
	}
	if _, reread := a2.Take(); !reread {
		t.Fatal("Notify did not ask for a re-read")
	}

	h.PublishAll()
	if !pending(b) || !pending(a2) {
		t.Fatal("PublishAll missed a subscriber")
	}
	if _, reread := b.Take(); !reread {
		t.Fatal("PublishAll did not ask for a re-read")
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

// Changes reach a subscriber in the order published; one without content (To
// zero) turns the ones before it and after it, until the next Take, into a re-read.
func TestHubKeepsChangesInOrder(t *testing.T) {
	t.Parallel()
	h := NewHub()
	s := h.Subscribe("a")
	defer s.Close()
	h.Publish(Change{OrderID: "a", From: 1, To: 3}, Change{OrderID: "b", From: 1, To: 2}, Change{OrderID: "a", From: 3, To: 4, Shown: true})
	changes, reread := s.Take()
	if reread || len(changes) != 2 || changes[0].To != 3 || changes[1].To != 4 || !changes[1].Shown {
		t.Fatalf("Take = %+v, reread %v; want a's two changes in order", changes, reread)
	}
	h.Publish(Change{OrderID: "a", From: 4, To: 5}, Change{OrderID: "a", Shown: true}, Change{OrderID: "a", From: 6, To: 7})
	if changes, reread := s.Take(); len(changes) != 0 || !reread {
		t.Fatalf("after a change without content: %d changes, reread %v; want a re-read", len(changes), reread)
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

// stepType is an event type withPassingSteps decodes to nil: a saga step that
// changes nothing the order shows.
const stepType = "test.v1.SagaStepStarted"

// withPassingSteps decodes stepType events to nil and the others as usual.
var withPassingSteps = WithDecoder(func(e eventstore.Event) (domain.Event, error) {
	if e.Type == stepType {
		return nil, nil
	}
	return decode(e)
})

// An event that means nothing to the order (a saga step its decoder maps to nil)
// moves the row's version and is handed to watchers as such, not as something to
// show.
func TestProjectorMarksWhatIsShown(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		hub := NewHub()
		p := newTestProjector(t, db, store, WithHub(hub), withPassingSteps)
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
		placed, reread := sub.Take()
		if reread || len(placed) != 1 || !placed[0].Shown || placed[0].From != 0 || placed[0].To != 1 {
			t.Fatalf("after placing: %+v, reread %v; want one shown change 0→1", placed, reread)
		}
		row, ok := placed[0].Apply(nil)
		if want, err := NewQueries(db).GetOrder(ctx, a); !ok || err != nil || !proto.Equal(row, want) {
			t.Fatalf("the placing change gives %v (%v), the row is %v (%v)", row, ok, want, err)
		}
		if _, err := store.Append(ctx, Category+"-"+a, 1, eventstore.Event{ID: a + "-step", Type: stepType, Time: epoch}); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, head(ctx, t, store))
		if o, err := NewQueries(db).GetOrder(ctx, a); err != nil || o.GetVersion() != 2 {
			t.Fatalf("row after the step: %v, %v; want version 2", o, err)
		}
		changes, reread := sub.Take()
		if reread || len(changes) != 1 || changes[0].Shown || changes[0].From != 1 || changes[0].To != 2 {
			t.Fatalf("after a step: %+v, reread %v; want one change 1→2 not shown", changes, reread)
		}
	})
}

// A watcher that replays the projector's changes, from the row's insertion on,
// holds after every commit exactly the row the database holds: the changes say
// what the statements did. Events arrive one per append, several per append (one batch),
// with saga steps folded in between, for every kind of history.
func TestChangesReplayToTheRow(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		hub := NewHub()
		r := startProjector(t, newTestProjector(t, db, store, WithHub(hub), withPassingSteps, WithBatchSize(16)))
		q := NewQueries(db)
		rng := rand.New(rand.NewPCG(11, 11))
		kinds := map[orderv1.OrderStatus]bool{}
		for n := range 40 {
			a := orderID(rng, n)
			stream := Category + "-" + a
			sub := hub.Subscribe(a)
			var o *orderv1.Order
			version := 0
			at := epoch
			h := history(t, rng, a, "user-1")
			for len(h) > 0 {
				// The next append: one or more of the order's events, each perhaps
				// followed by saga steps.
				var evs []eventstore.Event
				for k := 1 + rng.IntN(3); k > 0 && len(h) > 0; k-- {
					e := h[0]
					h = h[1:]
					at = at.Add(time.Duration(1+rng.IntN(5000)) * time.Millisecond)
					version++
					evs = append(evs, storedEvent(t, a, version, e, at))
					for range rng.IntN(3) {
						at = at.Add(time.Millisecond)
						version++
						evs = append(evs, eventstore.Event{ID: fmt.Sprintf("%s-%d", a, version), Type: stepType, Time: at})
					}
				}
				if _, err := store.Append(ctx, stream, eventstore.Version(version-len(evs)), evs...); err != nil {
					t.Fatal(err)
				}
				r.waitFor(t, head(ctx, t, store))
				changes, reread := sub.Take()
				if reread {
					t.Fatalf("%s v%d: asked to re-read a row it could replay", a, o.GetVersion())
				}
				for _, c := range changes {
					next, ok := c.Apply(o)
					if !ok {
						t.Fatalf("%s: change %d→%d does not apply to v%d", a, c.From, c.To, o.GetVersion())
					}
					o = next
				}
				want, err := q.GetOrder(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(o, want) {
					t.Fatalf("%s: replayed\n%v\nthe row holds\n%v", a, o, want)
				}
			}
			kinds[o.GetStatus()] = true
			sub.Close()
		}
		for _, st := range []orderv1.OrderStatus{orderv1.OrderStatus_ORDER_STATUS_COMPLETED, orderv1.OrderStatus_ORDER_STATUS_CANCELLED} {
			if !kinds[st] {
				t.Fatalf("no history ended %v; the test covers too little", st)
			}
		}
	})
}

// Saga steps that change nothing shown ride along in the update of the event before
// them in the same batch: the row ends at the last one's version and time. Replayed
// over a row that already holds the visible event (a checkpoint restored from before
// it), the run still ends at its last version rather than stopping short, which would
// make every later event of the order look like a gap.
func TestProjectorFoldsPassingSteps(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		rng := rand.New(rand.NewPCG(5, 5))
		a := orderID(rng, 1)
		h := history(t, rng, a, "user-1")
		for len(h) < 2 {
			h = history(t, rng, a, "user-1")
		}
		stream := Category + "-" + a
		ev := func(v int, e domain.Event, at time.Time) eventstore.Event {
			if e == nil {
				return eventstore.Event{ID: fmt.Sprintf("%s-%d", a, v), Type: stepType, Time: at}
			}
			return storedEvent(t, a, v, e, at)
		}
		t1, t2 := epoch, epoch.Add(time.Minute)
		if _, err := store.Append(ctx, stream, 0, ev(1, h[0], t1), ev(2, nil, t1), ev(3, nil, t1)); err != nil {
			t.Fatal(err)
		}
		beforeSecond := head(ctx, t, store)
		if _, err := store.Append(ctx, stream, 3, ev(4, h[1], t2), ev(5, nil, t2.Add(time.Second))); err != nil {
			t.Fatal(err)
		}
		row := func() (version int64, updated int64) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT version, updated_at FROM orders WHERE id = $1`, a).Scan(&version, &updated); err != nil {
				t.Fatal(err)
			}
			return version, updated
		}

		r := startProjector(t, newTestProjector(t, db, store, withPassingSteps, WithBatchSize(16)))
		r.waitFor(t, head(ctx, t, store))
		if v, at := row(); v != 5 || at != t2.Add(time.Second).UnixNano() {
			t.Fatalf("row at version %d, updated %d; want 5, %d", v, at, t2.Add(time.Second).UnixNano())
		}
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}

		// The row holds version 4 and the checkpoint says only up to version 3.
		if _, err := db.ExecContext(ctx, `UPDATE orders SET version = 4 WHERE id = $1`, a); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE projection_checkpoints SET position = $1 WHERE name = $2`, int64(beforeSecond), DefaultName); err != nil {
			t.Fatal(err)
		}
		r = startProjector(t, newTestProjector(t, db, store, withPassingSteps, WithBatchSize(16)))
		r.waitFor(t, head(ctx, t, store))
		if v, _ := row(); v != 5 {
			t.Fatalf("after the replay the row is at version %d, want 5", v)
		}
		o, err := NewQueries(db).GetOrder(ctx, a)
		if err != nil || o.GetStatus() == orderv1.OrderStatus_ORDER_STATUS_PENDING {
			t.Fatalf("order after the replay: %v, %v; want it past PENDING", o, err)
		}
	})
}
