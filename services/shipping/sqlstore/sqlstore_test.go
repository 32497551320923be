package sqlstore_test

import (
	"context"
	"testing"
	"time"

	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/sqlstore"
)

func TestExecuteOncePerCommandUntilPruned(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		store, err := sqlstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		// Opening again must not redo the migrations.
		if _, err := sqlstore.Open(ctx, db); err != nil {
			t.Fatalf("second Open: %v", err)
		}
		runs := 0
		fn := func(context.Context, app.Tx) (app.Reply, error) {
			runs++
			return app.Reply{Subject: app.SubjectFailed, Msg: &shippingv1.ShipmentFailed{OrderId: "o", Reason: "r"}}, nil
		}
		for range 3 {
			r, err := store.Execute(ctx, "cmd-1", fn)
			if err != nil || r.Subject != app.SubjectFailed || r.Msg.(*shippingv1.ShipmentFailed).GetReason() != "r" {
				t.Fatalf("Execute = %v, %v", r, err)
			}
		}
		if runs != 1 {
			t.Fatalf("fn ran %d times, want once", runs)
		}
		if n, err := store.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("Prune of nothing old = %d, %v", n, err)
		}
		if n, err := store.Prune(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v", n, err)
		}
		if _, ok, err := store.StoredReply(ctx, "cmd-1"); err != nil || ok {
			t.Fatalf("reply kept after prune: %v %v", ok, err)
		}
		if _, err := store.Execute(ctx, "cmd-1", fn); err != nil || runs != 2 {
			t.Fatalf("after prune: runs %d, %v", runs, err)
		}
	})
}
