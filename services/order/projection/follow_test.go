package projection

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/order/domain"
)

// countingStore says when a subscription starts and counts the live events its
// subscriptions handed over.
type countingStore struct {
	eventstore.Store
	subscribed chan struct{}
	once       sync.Once
	handed     atomic.Int64
}

func (s *countingStore) SubscribeCategory(ctx context.Context, category string, after eventstore.Position, h eventstore.Handler) error {
	s.once.Do(func() { close(s.subscribed) })
	return s.Store.SubscribeCategory(ctx, category, after, func(ctx context.Context, e eventstore.Event) error {
		err := h(ctx, e)
		if err == nil {
			s.handed.Add(1)
		}
		return err
	})
}

// Events that arrive while a live transaction commits are applied together in the
// next one, and the read model still ends up exact.
func TestLiveEventsArrivingDuringACommitShareTheNextTransaction(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := &countingStore{Store: eventstore.NewMemory(), subscribed: make(chan struct{})}
		p := newTestProjector(t, db, store)
		entered, release := make(chan struct{}), make(chan struct{})
		var mu sync.Mutex
		var sizes []int
		var first sync.Once
		p.beforeCommit = func(evs []eventstore.Event) error {
			mu.Lock()
			sizes = append(sizes, len(evs))
			mu.Unlock()
			first.Do(func() { close(entered); <-release })
			return nil
		}
		r := startProjector(t, p)
		<-store.subscribed // caught up on nothing: what comes now is live

		rng := rand.New(rand.NewPCG(3, 3))
		a := orderID(rng, 1)
		ha := history(t, rng, a, "user-1")
		appendEvent(ctx, t, store, a, 1, ha[0], time.Unix(1, 0))
		<-entered // the first live transaction is committing

		b := orderID(rng, 2)
		hb := history(t, rng, b, "user-2")
		last := appendAll(ctx, t, store, b, hb, time.Unix(2, 0))
		poll.Until(t, "the condition", func() bool { return store.handed.Load() == int64(1+len(hb)) })
		close(release)
		r.waitFor(t, last)

		mu.Lock()
		got := slices.Clone(sizes)
		mu.Unlock()
		if want := []int{1, len(hb)}; !slices.Equal(got, want) {
			t.Fatalf("transactions of %v events, want %v", got, want)
		}
		checkOrders(ctx, t, NewQueries(db), map[string][]domain.Event{a: ha[:1], b: hb})
	})
}

// waitUntil polls cond, boundedly.
