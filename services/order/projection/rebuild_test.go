package projection

import (
	"errors"
	"slices"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// Rebuilding from zero yields, row for row, what incremental projection built while
// the history was being written, and the old tables serve queries during the replay.
func TestRebuildMatchesIncrementalProjection(t *testing.T) {
	orders := 10_000
	if testing.Short() {
		orders = 1_000
	}
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		// Small batches while events keep arriving: the incremental path.
		r := startProjector(t, newTestProjector(t, db, store, WithBatchSize(64)))
		g := generate(ctx, t, store, 42, orders)
		last := head(ctx, t, store)
		r.waitFor(t, last)
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		incOrders, incSales := dump(ctx, t, db, dumpOrders), dump(ctx, t, db, dumpSales)
		if len(incOrders) != orders {
			t.Fatalf("incremental projection holds %d orders, want %d", len(incOrders), orders)
		}
		q := NewQueries(db)
		checkSales(ctx, t, q, wantSales(t, g.histories))

		var reports []RebuildProgress
		probe := orderIDs(g)[0]
		err := Rebuild(ctx, db, store, func(p RebuildProgress) {
			reports = append(reports, p)
			if p.Swapped {
				return
			}
			// Mid-replay the live tables are whole.
			if n := countRows(ctx, t, db, "orders"); n != orders {
				t.Errorf("during rebuild the live table holds %d orders, want %d", n, orders)
			}
			if _, err := q.GetOrder(ctx, probe); err != nil {
				t.Errorf("GetOrder during rebuild: %v", err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(reports); n < 2 || !reports[n-1].Swapped || reports[n-1].Position != last || reports[n-1].Applied != len(mustReadAll(ctx, t, store)) {
			t.Fatalf("progress reports end with %+v, want swapped at %d", reports[len(reports)-1], last)
		}
		if !slices.Equal(dump(ctx, t, db, dumpOrders), incOrders) {
			t.Error("rebuilt orders differ from incrementally projected ones")
		}
		if !slices.Equal(dump(ctx, t, db, dumpSales), incSales) {
			t.Error("rebuilt sales differ from incrementally projected ones")
		}
		p := newTestProjector(t, db, store)
		if pos, err := p.loadCheckpoint(ctx); err != nil || pos != last {
			t.Errorf("checkpoint after rebuild = %d, %v; want %d", pos, err, last)
		}
	})
}

func orderIDs(g generated) []string {
	var ids []string
	for id := range g.histories {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Rebuilding twice (index names must not collide) while a projector runs: the
// projector notices the swapped checkpoint, resumes from it, and nothing is lost or
// doubled, including events appended after the swap.
func TestRebuildWhileProjectorRuns(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		g := generate(ctx, t, store, 1, 150)
		r := startProjector(t, newTestProjector(t, db, store, WithBatchSize(16)))
		// The queries' statements are compiled against the tables each swap drops;
		// they must read the swapped-in ones afterwards.
		r.waitFor(t, head(ctx, t, store))
		q := NewQueries(db)
		checkOrders(ctx, t, q, g.histories)
		for range 2 {
			if err := Rebuild(ctx, db, store, nil); err != nil {
				t.Fatal(err)
			}
			checkOrders(ctx, t, q, g.histories)
		}
		more := generate(ctx, t, store, 2, 80)
		for id, h := range more.histories {
			g.histories[id] = h
		}
		r.waitFor(t, head(ctx, t, store))
		checkOrders(ctx, t, q, g.histories)
		checkSales(ctx, t, q, wantSales(t, g.histories))
		if n := countRows(ctx, t, db, "orders"); n != len(g.histories) {
			t.Errorf("orders = %d, want %d", n, len(g.histories))
		}
	})
}

// A projector whose checkpoint a Rebuild moved refuses to write on top of the swapped
// tables (its transaction rolls back) and Run resumes from the moved checkpoint.
func TestProjectorNoticesSwappedCheckpoint(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		g := generate(ctx, t, store, 4, 20)
		p := newTestProjector(t, db, store, WithBatchSize(8))
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if _, err := p.loadCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		first := mustReadAll(ctx, t, store)
		if err := p.applyBatch(ctx, first[:10]); err != nil {
			t.Fatal(err)
		}
		if err := Rebuild(ctx, db, store, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.applyBatch(ctx, first[10:12]); !errors.Is(err, errCheckpointMoved) {
			t.Fatalf("applyBatch after the swap = %v, want errCheckpointMoved", err)
		}
		more := generate(ctx, t, store, 5, 20)
		for id, h := range more.histories {
			g.histories[id] = h
		}
		r := startProjector(t, p)
		r.waitFor(t, head(ctx, t, store))
		q := NewQueries(db)
		checkOrders(ctx, t, q, g.histories)
		checkSales(ctx, t, q, wantSales(t, g.histories))
	})
}

// Rebuild on a database that never ran the projector builds the tables from zero.
func TestRebuildFromEmptyDatabase(t *testing.T) {
	db := sqltest.Open(t, sqldb.SQLite)
	ctx := testCtx(t)
	store := eventstore.NewMemory()
	g := generate(ctx, t, store, 3, 30)
	if err := Rebuild(ctx, db, store, nil); err != nil {
		t.Fatal(err)
	}
	checkOrders(ctx, t, NewQueries(db), g.histories)
}
