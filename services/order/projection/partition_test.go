package projection

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/order/domain"
)

// runPartitions runs p.RunPartitions in the background.
func runPartitions(t testing.TB, p *Projector, parts int, owned ...int) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Projector: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.RunPartitions(ctx, parts, owned) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// Two instances sharing one read model each project their own partitions, together
// exactly what one projector makes of the whole category; when one stops and the
// other takes its partitions over, it goes on from that one's checkpoints, so the
// events written meanwhile are applied and none twice. A partition's first
// checkpoint is where the plain (unpartitioned) projector stopped.
func TestPartitionsSplitTheCategoryBetweenInstances(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		const parts = 4

		// A shop that ran one plain projector first.
		g := generate(ctx, t, store, 11, 30)
		plain := startProjector(t, newTestProjector(t, db, store))
		plain.waitFor(t, head(ctx, t, store))
		if err := plain.stop(t); err != nil {
			t.Fatal(err)
		}
		g2 := generate(ctx, t, store, 12, 60)

		a := runPartitions(t, newTestProjector(t, db, store), parts, 0, 1)
		b := runPartitions(t, newTestProjector(t, db, store), parts, 2, 3)
		end := head(ctx, t, store)
		a.waitFor(t, end)
		b.waitFor(t, end)
		all := mergeHistories(g.histories, g2.histories)
		checkOrders(ctx, t, NewQueries(db), all)
		checkSales(ctx, t, NewQueries(db), wantSales(t, all))

		// b stops; orders go on; a takes b's partitions over.
		if err := b.stop(t); err != nil {
			t.Fatal(err)
		}
		g3 := generate(ctx, t, store, 13, 60)
		if err := a.stop(t); err != nil {
			t.Fatal(err)
		}
		a = runPartitions(t, newTestProjector(t, db, store), parts, 0, 1, 2, 3)
		a.waitFor(t, head(ctx, t, store))
		all = mergeHistories(all, g3.histories)
		checkOrders(ctx, t, NewQueries(db), all)
		checkSales(ctx, t, NewQueries(db), wantSales(t, all))

		names := dump(ctx, t, db, `SELECT name FROM projection_checkpoints ORDER BY name`)
		for k := range parts {
			if !slices.ContainsFunc(names, func(n string) bool { return n == DefaultName+"#"+strconv.Itoa(k) }) {
				t.Errorf("checkpoints %v: none for partition %d", names, k)
			}
		}
	})
}

// gatedStore holds every event its subscriptions deliver until open is closed, and
// closes subscribed when the first subscription starts: from then on nothing new
// reaches the reader but through the gate.
type gatedStore struct {
	eventstore.Store
	open       chan struct{}
	subscribed chan struct{}
	once       sync.Once
}

func newGatedStore() *gatedStore {
	return &gatedStore{Store: eventstore.NewMemory(), open: make(chan struct{}), subscribed: make(chan struct{})}
}

func (s *gatedStore) SubscribeCategory(ctx context.Context, category string, after eventstore.Position, h eventstore.Handler) error {
	s.once.Do(func() { close(s.subscribed) })
	return s.Store.SubscribeCategory(ctx, category, after, func(ctx context.Context, e eventstore.Event) error {
		select {
		case <-s.open:
		case <-ctx.Done():
			return ctx.Err()
		}
		return h(ctx, e)
	})
}

// An instance whose partitions were taken over and moved on (its leases lapsed
// while it stalled) cannot write over the new owner's work: its checkpoint update
// fails, its batch rolls back, and it resumes from the moved checkpoints.
func TestPartitionCheckpointMovedUnderTheOwner(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := newGatedStore()
		g := generate(ctx, t, store, 21, 20)
		r := runPartitions(t, newTestProjector(t, db, store), 2, 0, 1)
		r.waitFor(t, head(ctx, t, store)) // caught up by reading, not by the gated subscription
		// Past its catch-up reads: a read after the next orders would apply them
		// without passing the gate.
		select {
		case <-store.subscribed:
		case <-ctx.Done():
			t.Fatal("the projector never subscribed")
		}
		before := countRows(ctx, t, db, "orders")
		if before != len(g.histories) {
			t.Fatalf("orders = %d, want %d", before, len(g.histories))
		}

		// New orders arrive while the instance stalls; meanwhile another instance
		// took both partitions and applied them (here: only moved the checkpoints).
		generate(ctx, t, store, 22, 10)
		end := head(ctx, t, store)
		if _, err := db.ExecContext(ctx, `UPDATE projection_checkpoints SET position = $1 WHERE name = $2 OR name = $3`,
			int64(end), DefaultName+"#0", DefaultName+"#1"); err != nil {
			t.Fatal(err)
		}
		close(store.open)
		r.waitFor(t, end)
		if got := countRows(ctx, t, db, "orders"); got != before {
			t.Errorf("orders = %d after the takeover, want %d: the stalled instance wrote over the new owner's partitions", got, before)
		}
	})
}

func mergeHistories(ms ...map[string][]domain.Event) map[string][]domain.Event {
	out := map[string][]domain.Event{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Instances projecting different partitions share the sales_by_product rows: a
// completed order's products are counted in every batch's transaction. Batches
// that updated those rows in event order (one product X then Y, another Y then X)
// deadlocked on PostgreSQL, failing a batch now and then; the rows are now written
// in one order by all.
func TestPartitionInstancesShareTheSalesRowsWithoutDeadlock(t *testing.T) {
	db := sqltest.Open(t, sqldb.Postgres)
	ctx := testCtx(t)
	store := eventstore.NewMemory()
	const parts = 4
	var rs []*running
	for _, owned := range [][]int{{0}, {1}, {2}, {3}} {
		rs = append(rs, runPartitions(t, newTestProjector(t, db, store, WithBatchSize(16)), parts, owned...))
	}
	all := map[string][]domain.Event{}
	for seed := range uint64(6) {
		all = mergeHistories(all, generate(ctx, t, store, 100+seed, 200).histories)
	}
	end := head(ctx, t, store)
	for _, r := range rs {
		r.waitFor(t, end)
	}
	checkSales(ctx, t, NewQueries(db), wantSales(t, all))
}
