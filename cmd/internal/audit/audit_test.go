package audit_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/order/projection"

	inventorystore "github.com/eventshop/eventshop/services/inventory/sqlstore"
	paymentstore "github.com/eventshop/eventshop/services/payment/sqlstore"
	shippingstore "github.com/eventshop/eventshop/services/shipping/sqlstore"
)

// shop is a data directory whose databases carry the services' real schemas.
type shop struct {
	t   *testing.T
	dir string
	dbs map[string]*sqldb.DB
}

func newShop(t *testing.T) *shop {
	t.Helper()
	ctx := t.Context()
	s := &shop{t: t, dir: t.TempDir(), dbs: map[string]*sqldb.DB{}}
	src := audit.DataDir(s.dir)
	for name, dsn := range map[string]string{"orders": src.Orders, "payments": src.Payments, "inventory": src.Inventory, "shipping": src.Shipping} {
		db, err := sqldb.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s.dbs[name] = db
	}
	must(t, projection.Migrate(ctx, s.dbs["orders"]))
	_, err := participant.Migrate(ctx, s.dbs["payments"], "payment", paymentstore.Migrations())
	must(t, err)
	_, err = participant.Migrate(ctx, s.dbs["inventory"], "inventory", inventorystore.Migrations())
	must(t, err)
	_, err = participant.Migrate(ctx, s.dbs["shipping"], "shipping", shippingstore.Migrations())
	must(t, err)
	// One product: 10 stocked.
	s.exec("inventory", `INSERT INTO stock (product_id, available, reserved, sold, total_stocked) VALUES ('mug', 10, 0, 0, 10)`)
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (s *shop) exec(db, q string, args ...any) {
	s.t.Helper()
	if _, err := s.dbs[db].ExecContext(s.t.Context(), q, args...); err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
}

// order inserts an order of one mug (total 1000 USD cents) in status.
func (s *shop) order(id string, status int) {
	s.exec("orders", `INSERT INTO orders (id, user_id, status, lines, currency, subtotal, shipping, total, address, created_at, updated_at, version)
		VALUES ($1, 'alice', $2, '[]', 'USD', 900, 100, 1000, '{}', 0, 0, 1)`, id, status)
}

func (s *shop) payment(orderID string, status int, authorized, captured, refunded int64) {
	s.exec("payments", `INSERT INTO payments (id, order_id, status, currency, authorized, captured, refunded, card_brand, decline_code, decline_reason, create_time, update_time)
		VALUES ($1, $2, $3, 'USD', $4, $5, $6, 'visa', '', '', 0, 0)`, "pay-"+orderID, orderID, status, authorized, captured, refunded)
}

// reservation records a reservation of qty mugs and moves the stock to match.
func (s *shop) reservation(orderID string, status int, qty int64) {
	s.exec("inventory", `INSERT INTO reservations (id, order_id, status, expire_time, create_time, update_time) VALUES ($1, $2, $3, 0, 0, 0)`, "res-"+orderID, orderID, status)
	s.exec("inventory", `INSERT INTO reservation_lines (reservation_id, product_id, quantity) VALUES ($1, 'mug', $2)`, "res-"+orderID, qty)
	switch status {
	case 1:
		s.exec("inventory", `UPDATE stock SET available = available - $1, reserved = reserved + $1`, qty)
	case 2:
		s.exec("inventory", `UPDATE stock SET available = available - $1, sold = sold + $1`, qty)
	}
}

func (s *shop) shipment(orderID string, status int) {
	s.exec("shipping", `INSERT INTO shipments (order_id, id, tracking_id, status, name, street, city, postal_code, country_code, cost_minor, currency, create_time, update_time)
		VALUES ($1, $2, 'T', $3, 'A', 'S', 'C', 'P', 'US', 100, 'USD', 0, 0)`, orderID, "ship-"+orderID, status)
}

func (s *shop) completed(id string) {
	s.order(id, 6)
	s.payment(id, 3, 1000, 1000, 0)
	s.reservation(id, 2, 1)
	s.shipment(id, 1)
}

func (s *shop) cancelled(id string) {
	s.order(id, 8)
	s.payment(id, 4, 1000, 0, 0)
	s.reservation(id, 3, 1)
	s.shipment(id, 2)
}

func TestAudit(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *shop)
		want  []string
	}{
		{name: "balanced", setup: func(s *shop) { s.completed("o1"); s.cancelled("o2") }},
		{name: "declined, nothing else", setup: func(s *shop) { s.order("o1", 8); s.payment("o1", 2, 0, 0, 0) }},
		{name: "refunded after capture", setup: func(s *shop) {
			s.order("o1", 8)
			s.payment("o1", 5, 1000, 1000, 1000)
		}},
		{name: "in flight", setup: func(s *shop) { s.order("o1", 3) }, want: []string{audit.RuleNotFinal}},
		{name: "completed without capture", setup: func(s *shop) {
			s.order("o1", 6)
			s.payment("o1", 1, 1000, 0, 0)
			s.reservation("o1", 2, 1)
			s.shipment("o1", 1)
		}, want: []string{audit.RuleCompletedCharge}},
		{name: "completed with stock only held and no shipment", setup: func(s *shop) {
			s.order("o1", 6)
			s.payment("o1", 3, 1000, 1000, 0)
			s.reservation("o1", 1, 1)
		}, want: []string{audit.RuleCompletedShipment, audit.RuleCompletedStock}},
		{name: "charged twice", setup: func(s *shop) {
			s.completed("o1")
			s.exec("payments", `UPDATE payments SET authorized = 2000, captured = 2000`)
		}, want: []string{audit.RuleChargedTwice, audit.RuleCompletedCharge}},
		{name: "cancelled keeps the hold", setup: func(s *shop) {
			s.order("o1", 8)
			s.payment("o1", 1, 1000, 0, 0)
		}, want: []string{audit.RuleCancelledCharge}},
		{name: "cancelled keeps the money", setup: func(s *shop) {
			s.order("o1", 8)
			s.payment("o1", 5, 1000, 1000, 400)
		}, want: []string{audit.RuleCancelledCharge}},
		{name: "cancelled keeps stock and parcel", setup: func(s *shop) {
			s.order("o1", 8)
			s.reservation("o1", 1, 2)
			s.shipment("o1", 1)
		}, want: []string{audit.RuleCancelledShipment, audit.RuleCancelledStock}},
		{name: "payment of no order", setup: func(s *shop) { s.payment("ghost", 3, 1000, 1000, 0) }, want: []string{audit.RuleOrphanPayment}},
		{name: "reserved units nobody holds", setup: func(s *shop) {
			s.exec("inventory", `UPDATE stock SET available = 7, reserved = 3`)
		}, want: []string{audit.RuleStockReserved}},
		{name: "sold units nobody bought", setup: func(s *shop) {
			s.exec("inventory", `UPDATE stock SET available = 9, sold = 1`)
		}, want: []string{audit.RuleStockSold}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShop(t)
			tt.setup(s)
			r, err := audit.Run(context.Background(), audit.DataDir(s.dir))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range r.Violations {
				got = append(got, v.Rule)
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("violations %v, want rules %v", r.Violations, want)
			}
		})
	}
}

func TestAuditFailsOnMissingDatabase(t *testing.T) {
	src := audit.DataDir(filepath.Join(t.TempDir(), "nothing-here"))
	if _, err := audit.Run(context.Background(), src); err == nil {
		t.Fatal("audit of a missing data directory succeeded")
	}
}
