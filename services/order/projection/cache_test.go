package projection

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// Readers hammer the orders a projector is changing. Once the projector has told of
// a commit, GetOrder through the cache answers exactly what the table holds: never a
// row read before the commit and kept after it (it fails so when put ignores the
// shard's epoch), never one the commit should have replaced.
func TestOrderCacheNeverAnswersBehindTheProjector(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		cache := NewOrderCache(64, time.Hour) // only the projector's word may refresh an order
		r := startProjector(t, newTestProjector(t, db, store, WithHub(cache.Notifier(NewHub())), WithBatchSize(4)))
		cached, direct := NewQueries(db, WithOrderCache(cache)), NewQueries(db)

		rng := rand.New(rand.NewPCG(5, 5))
		const orders, rounds = 6, 8
		for round := range rounds {
			raceRound(t, ctx, store, r, cached, direct, rng, round*orders, orders)
		}
	})
}

// raceRound projects the histories of n new orders, numbered from first, step by
// step, while readers read them through cached, and checks cached against direct
// after each step.
func raceRound(t *testing.T, ctx context.Context, store eventstore.Store, r *running, cached, direct *Queries, rng *rand.Rand, first, orders int) {
	t.Helper()
	ids := make([]string, orders)
	histories := make([][]eventstore.Event, orders)
	for i := range ids {
		ids[i] = orderID(rng, first+i)
		for v, e := range history(t, rng, ids[i], "user-1") {
			histories[i] = append(histories[i], storedEvent(t, ids[i], v+1, e, epoch.Add(time.Duration(v)*time.Second)))
		}
	}

	stop := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := w; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := cached.GetOrder(ctx, ids[n%orders]); err == nil {
					reads.Add(1)
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	for step := 0; ; step++ {
		appended := false
		for i, h := range histories {
			if step >= len(h) {
				continue
			}
			if _, err := store.Append(ctx, Category+"-"+ids[i], eventstore.Version(step), h[step]); err != nil {
				t.Fatal(err)
			}
			appended = true
		}
		if !appended {
			break
		}
		r.waitFor(t, head(ctx, t, store))
		for _, id := range ids {
			want, err := direct.GetOrder(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cached.GetOrder(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("step %d, %s: the cache answered v%d %v, the table holds v%d %v",
					step, id, got.GetVersion(), got.GetStatus(), want.GetVersion(), want.GetStatus())
			}
		}
	}
	if reads.Load() == 0 {
		t.Fatal("the readers read nothing; the test raced with nothing")
	}
}

// A cached order is answered from memory: a change the projector did not tell (the
// row rewritten behind its back, as a Rebuild's swap does) shows only once the TTL
// has passed, or at once after PublishAll. Callers get orders of their own to change.
func TestOrderCacheAnswersFromMemoryForItsTTL(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		cache := NewOrderCache(8, time.Minute)
		now := epoch
		cache.now = func() time.Time { return now }
		notify := cache.Notifier(nil)
		r := startProjector(t, newTestProjector(t, db, store, WithHub(notify)))
		q := NewQueries(db, WithOrderCache(cache))

		rng := rand.New(rand.NewPCG(6, 6))
		id := orderID(rng, 0)
		r.waitFor(t, appendAll(ctx, t, store, id, history(t, rng, id, "user-1")[:1], epoch))
		first, err := q.GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		first.CancelReason = "changed by the caller"

		if _, err := db.ExecContext(ctx, `UPDATE orders SET cancel_reason = 'rewritten' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		read := func() string {
			t.Helper()
			o, err := q.GetOrder(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return o.GetCancelReason()
		}
		if got := read(); got != "" {
			t.Fatalf("inside the TTL: cancel reason %q, want the cached order's (none)", got)
		}
		now = now.Add(time.Minute)
		if got := read(); got != "rewritten" {
			t.Fatalf("after the TTL: cancel reason %q, want the table's", got)
		}

		if _, err := db.ExecContext(ctx, `UPDATE orders SET cancel_reason = 'swapped' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if got := read(); got != "rewritten" {
			t.Fatalf("cancel reason %q, want the cached one", got)
		}
		notify.PublishAll()
		if got := read(); got != "swapped" {
			t.Fatalf("after PublishAll: cancel reason %q, want the table's", got)
		}
	})
}

// The cache holds at most its size, an order missing from the table is not
// remembered as missing, and a read that raced with a change is not kept.
func TestOrderCacheBounds(t *testing.T) {
	t.Parallel()
	c := NewOrderCache(cacheShards*2, time.Hour)
	for i := range cacheShards * 10 {
		id := orderID(rand.New(rand.NewPCG(uint64(i), 1)), i)
		_, e := c.get(id)
		c.put(&orderRow{id: id}, e)
	}
	if n := c.Len(); n > cacheShards*2 {
		t.Fatalf("%d orders cached, the bound is %d", n, cacheShards*2)
	}

	row, e := c.get("late")
	if row != nil {
		t.Fatal("an order never read was answered")
	}
	c.Notifier(nil).Publish(Change{OrderID: "late", From: 1, To: 2})
	c.put(&orderRow{id: "late", version: 1}, e) // read before the change was told
	if row, _ := c.get("late"); row != nil {
		t.Fatalf("a row read before a change was kept after it: v%d", row.version)
	}
	_, e = c.get("late")
	c.put(&orderRow{id: "late", version: 2}, e)
	if row, _ := c.get("late"); row == nil || row.version != 2 {
		t.Fatal("a row read after the change was not kept")
	}
}
