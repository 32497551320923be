package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/inventory/app"
	"github.com/eventshop/eventshop/services/inventory/domain"
	"github.com/eventshop/eventshop/services/inventory/sqlstore"
)

// discard stands in for the bus: these tests call the app directly, not over NATS.
type discard struct{}

func (discard) PublishEvent(_ context.Context, _, id string, _ proto.Message, _ ...messaging.SendOption) (string, error) {
	return id, nil
}

// handlers runs the app's decisions through the participant runtime, one command per
// transaction, as a batch of one would.
type handlers struct {
	*app.Handlers
	rt *participant.Runtime
}

func (h handlers) Reserve(ctx context.Context, commandID, orderID string, lines []domain.Line) (app.Reply, error) {
	d, err := h.Handlers.Reserve(orderID, lines)
	if err != nil {
		return app.Reply{}, err
	}
	return h.rt.Execute(ctx, commandID, participant.Bind(sqlstore.TxView, d))
}

func open(t testing.TB, db *sqldb.DB) (handlers, *sqlstore.Store) {
	t.Helper()
	replies, err := participant.Migrate(context.Background(), db, "inventory", sqlstore.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	store := sqlstore.New(db)
	h := app.New(store, discard{}, time.Hour, slog.Default())
	rt := participant.NewRuntime(db, replies, app.ReplyID, participant.Handle(sqlstore.TxView, h.ReserveInventory))
	return handlers{Handlers: h, rt: rt}, store
}

func stock(t testing.TB, store *sqlstore.Store, id string) domain.Stock {
	t.Helper()
	s, err := store.Stock(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	return s
}

// 50 orders race for 1 unit each of a product with 10: exactly 10 win, on every
// dialect, and the stock never goes negative (the schema would refuse it).
func TestReserveNeverOversells(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		h, store := open(t, db)
		ctx := context.Background()
		if _, err := store.Seed(ctx, []string{"hot"}, 10); err != nil {
			t.Fatal(err)
		}
		const buyers = 50
		var wg sync.WaitGroup
		results := make([]string, buyers)
		errs := make([]error, buyers)
		for i := range buyers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := h.Reserve(ctx, fmt.Sprintf("cmd-%d", i), fmt.Sprintf("order-%d", i), []domain.Line{{ProductID: "hot", Quantity: 1}})
				results[i], errs[i] = r.Subject, err
			}()
		}
		wg.Wait()
		reserved := 0
		for i := range buyers {
			if errs[i] != nil {
				t.Fatalf("buyer %d: %v", i, errs[i])
			}
			if results[i] == app.SubjectReserved {
				reserved++
			}
		}
		s := stock(t, store, "hot")
		if reserved != 10 || s.Available != 0 || s.Reserved != 10 {
			t.Fatalf("%d reservations, stock %+v; want exactly 10 reserved and 0 available", reserved, s)
		}
	})
}

// Orders of several products race in random line order: each holds all its lines or
// none, and no stock goes negative.
func TestReserveAllOrNothingUnderConcurrency(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		h, store := open(t, db)
		ctx := context.Background()
		products := []string{"a", "b", "c", "d"}
		if _, err := store.Seed(ctx, products, 7); err != nil {
			t.Fatal(err)
		}
		const orders = 40
		var wg sync.WaitGroup
		won := make([][]domain.Line, orders)
		for i := range orders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				perm := rand.Perm(len(products))
				lines := []domain.Line{{ProductID: products[perm[0]], Quantity: 1}, {ProductID: products[perm[1]], Quantity: 2}}
				r, err := h.Reserve(ctx, fmt.Sprintf("cmd-%d", i), fmt.Sprintf("order-%d", i), lines)
				if err != nil {
					t.Errorf("order %d: %v", i, err)
					return
				}
				if r.Subject == app.SubjectReserved {
					won[i] = lines
				}
			}()
		}
		wg.Wait()
		want := map[string]int64{}
		for _, lines := range won {
			for _, l := range lines {
				want[l.ProductID] += l.Quantity
			}
		}
		for _, p := range products {
			s := stock(t, store, p)
			if s.Reserved != want[p] || s.Available != 7-want[p] {
				t.Errorf("%s: stock %+v, want %d reserved by the winning orders", p, s, want[p])
			}
		}
	})
}

func TestSeedNeverOverwrites(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		h, store := open(t, db)
		ctx := context.Background()
		if n, err := store.Seed(ctx, []string{"a", "b"}, 10); err != nil || n != 2 {
			t.Fatalf("seed = %d, %v", n, err)
		}
		if _, err := h.Reserve(ctx, "c1", "o1", []domain.Line{{ProductID: "a", Quantity: 4}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.SetStock(ctx, "b", 3); err != nil {
			t.Fatal(err)
		}
		if n, err := store.Seed(ctx, []string{"a", "b", "c"}, 100); err != nil || n != 1 {
			t.Fatalf("second seed = %d, %v; want only c created", n, err)
		}
		if a := stock(t, store, "a"); a.Available != 6 || a.Reserved != 4 || a.TotalStocked != 10 {
			t.Fatalf("a = %+v", a)
		}
		if b := stock(t, store, "b"); b.Available != 3 || b.TotalStocked != 3 {
			t.Fatalf("b = %+v", b)
		}
		if c := stock(t, store, "c"); c.Available != 100 {
			t.Fatalf("c = %+v", c)
		}
	})
}

func TestSchemaRefusesNegativeStock(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		_, store := open(t, db)
		ctx := context.Background()
		if _, err := store.Seed(ctx, []string{"a"}, 1); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`UPDATE stock SET available = available - 2, reserved = reserved + 2 WHERE product_id = 'a'`,
			`UPDATE stock SET available = available + 1 WHERE product_id = 'a'`,
		} {
			if _, err := db.ExecContext(ctx, q); err == nil {
				t.Errorf("schema accepted %q", q)
			}
		}
	})
}
