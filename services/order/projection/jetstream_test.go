package projection

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// End to end on the JetStream event store (embedded NATS): live projection, a restart
// that resumes from the checkpoint, and a rebuild that matches it.
func TestJetStreamEndToEnd(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		_, nc := natstest.Connect(t)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		store := eventstore.NewJetStream(js)
		if err := store.EnsureCategory(ctx, Category); err != nil {
			t.Fatal(err)
		}
		r := startProjector(t, newTestProjector(t, db, store))
		g := generate(ctx, t, store, 8, 40)
		r.waitFor(t, head(ctx, t, store))
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		more := generate(ctx, t, store, 9, 20)
		for id, h := range more.histories {
			g.histories[id] = h
		}
		r = startProjector(t, newTestProjector(t, db, store))
		r.waitFor(t, head(ctx, t, store))
		q := NewQueries(db)
		checkOrders(ctx, t, q, g.histories)
		checkSales(ctx, t, q, wantSales(t, g.histories))

		before := dump(ctx, t, db, dumpOrders)
		if err := Rebuild(ctx, db, store, nil); err != nil {
			t.Fatal(err)
		}
		after := dump(ctx, t, db, dumpOrders)
		if len(after) != len(g.histories) || len(before) != len(after) {
			t.Fatalf("rows before %d, after rebuild %d, want %d", len(before), len(after), len(g.histories))
		}
		for i := range before {
			if before[i] != after[i] {
				t.Fatalf("row %d differs after rebuild:\n%s\n%s", i, before[i], after[i])
			}
		}
	})
}
