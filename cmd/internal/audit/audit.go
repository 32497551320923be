// Package audit checks the shop's money and stock invariants across the services'
// databases once the shop is quiet: every order ended, every ended order balanced.
// `shopd audit` and the end-to-end tests run it.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/sqldb"
)

// Sources are the databases the audit reads: the order read model and the
// payment, inventory and shipping stores (SQLite paths or postgres:// URLs).
//
// The audit reads the stores rather than asking the services, because no RPC lists
// every order, payment or shipment, and the stock's total_stocked is not part of
// the inventory API. It only reads, so it may run against a live shop, but it
// judges a quiet one: an order still in flight is reported as not final.
type Sources struct {
	Orders    string
	Payments  string
	Inventory string
	Shipping  string
}

// DataDir returns the Sources of a shopd data directory (-data-dir) with the
// default database names.
func DataDir(dir string) Sources {
	return Sources{
		Orders:    filepath.Join(dir, "order-read.db"),
		Payments:  filepath.Join(dir, "payment.db"),
		Inventory: filepath.Join(dir, "inventory.db"),
		Shipping:  filepath.Join(dir, "shipping.db"),
	}
}

// Rules a Violation can break.
const (
	RuleNotFinal          = "order not final"
	RuleCompletedCharge   = "completed order: captured amount is not the total"
	RuleCompletedStock    = "completed order: stock not committed"
	RuleCompletedShipment = "completed order: no live shipment"
	RuleCancelledCharge   = "cancelled order: money still held or taken"
	RuleCancelledStock    = "cancelled order: stock still reserved or sold"
	RuleCancelledShipment = "cancelled order: shipment still live"
	RuleChargedTwice      = "order charged more than its total"
	RuleOrphanPayment     = "payment for an unknown order"
	RuleStockBalance      = "stock: available + reserved + sold != total stocked"
	RuleStockReserved     = "stock: reserved units differ from held reservations"
	RuleStockSold         = "stock: sold units differ from committed reservations"
)

// Violation is one broken invariant, naming the order or the product.
type Violation struct {
	Rule      string
	OrderID   string
	ProductID string
	Detail    string
}

func (v Violation) String() string {
	subject := "order " + v.OrderID
	if v.ProductID != "" {
		subject = "product " + v.ProductID
	}
	return fmt.Sprintf("%s: %s (%s)", subject, v.Rule, v.Detail)
}

// Report is the outcome of an audit.
type Report struct {
	Orders   int
	Products int
	// ByStatus counts orders per status name (e.g. "ORDER_STATUS_COMPLETED").
	ByStatus   map[string]int
	Violations []Violation
}

// OK reports whether no invariant is broken.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// Print writes a summary line and each violation.
func (r Report) Print(w io.Writer) {
	statuses := make([]string, 0, len(r.ByStatus))
	for s, n := range r.ByStatus {
		statuses = append(statuses, fmt.Sprintf("%s=%d", strings.TrimPrefix(s, "ORDER_STATUS_"), n))
	}
	slices.Sort(statuses)
	fmt.Fprintf(w, "audited %d orders (%s) and %d products: %d violations\n",
		r.Orders, strings.Join(statuses, " "), r.Products, len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintln(w, v)
	}
}

// Status values of the services' tables (their domain packages own them).
const (
	paymentAuthorized    = 1
	reservationHeld      = 1
	reservationCommitted = 2
	shipmentCreated      = 1
)

type orderRow struct {
	id       string
	status   orderv1.OrderStatus
	currency string
	total    int64
}

type paymentRow struct {
	status                        int
	currency                      string
	authorized, captured, refunds int64
}

// Run reads every source and returns the violations found. It returns an error
// (and no report) when a source cannot be opened or read.
func Run(ctx context.Context, src Sources) (Report, error) {
	dbs := map[string]*sqldb.DB{}
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	for name, dsn := range map[string]string{"orders": src.Orders, "payments": src.Payments, "inventory": src.Inventory, "shipping": src.Shipping} {
		if dsn == "" {
			return Report{}, fmt.Errorf("audit: no %s database given", name)
		}
		db, err := sqldb.Open(ctx, dsn)
		if err != nil {
			return Report{}, fmt.Errorf("audit: open %s: %w", name, err)
		}
		dbs[name] = db
	}

	var orders []orderRow
	err := query(ctx, dbs["orders"], `SELECT id, status, currency, total FROM orders`, func(scan func(...any) error) error {
		var o orderRow
		if err := scan(&o.id, &o.status, &o.currency, &o.total); err != nil {
			return err
		}
		orders = append(orders, o)
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: orders: %w", err)
	}
	payments := map[string]paymentRow{}
	err = query(ctx, dbs["payments"], `SELECT order_id, status, currency, authorized, captured, refunded FROM payments`, func(scan func(...any) error) error {
		var id string
		var p paymentRow
		if err := scan(&id, &p.status, &p.currency, &p.authorized, &p.captured, &p.refunds); err != nil {
			return err
		}
		payments[id] = p
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: payments: %w", err)
	}
	reservations := map[string]int{}
	err = query(ctx, dbs["inventory"], `SELECT order_id, status FROM reservations`, func(scan func(...any) error) error {
		var id string
		var st int
		if err := scan(&id, &st); err != nil {
			return err
		}
		reservations[id] = st
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: reservations: %w", err)
	}
	shipments := map[string]int{}
	err = query(ctx, dbs["shipping"], `SELECT order_id, status FROM shipments`, func(scan func(...any) error) error {
		var id string
		var st int
		if err := scan(&id, &st); err != nil {
			return err
		}
		shipments[id] = st
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: shipments: %w", err)
	}

	r := Report{Orders: len(orders), ByStatus: map[string]int{}}
	add := func(v Violation) { r.Violations = append(r.Violations, v) }
	known := map[string]bool{}
	for _, o := range orders {
		known[o.id] = true
		r.ByStatus[o.status.String()]++
		p, paid := payments[o.id]
		charged := p.captured - p.refunds
		if paid && charged > o.total {
			add(Violation{Rule: RuleChargedTwice, OrderID: o.id, Detail: fmt.Sprintf("charged %d, total %d", charged, o.total)})
		}
		switch o.status {
		case orderv1.OrderStatus_ORDER_STATUS_COMPLETED:
			if !paid || charged != o.total || p.currency != o.currency {
				add(Violation{Rule: RuleCompletedCharge, OrderID: o.id, Detail: fmt.Sprintf("charged %d %s, total %d %s", charged, p.currency, o.total, o.currency)})
			}
			if st := reservations[o.id]; st != reservationCommitted {
				add(Violation{Rule: RuleCompletedStock, OrderID: o.id, Detail: fmt.Sprintf("reservation status %d", st)})
			}
			if st := shipments[o.id]; st != shipmentCreated {
				add(Violation{Rule: RuleCompletedShipment, OrderID: o.id, Detail: fmt.Sprintf("shipment status %d", st)})
			}
		case orderv1.OrderStatus_ORDER_STATUS_CANCELLED:
			if paid && (p.status == paymentAuthorized || charged != 0) {
				add(Violation{Rule: RuleCancelledCharge, OrderID: o.id, Detail: fmt.Sprintf("payment status %d, authorized %d, captured %d, refunded %d", p.status, p.authorized, p.captured, p.refunds)})
			}
			if st := reservations[o.id]; st == reservationHeld || st == reservationCommitted {
				add(Violation{Rule: RuleCancelledStock, OrderID: o.id, Detail: fmt.Sprintf("reservation status %d", st)})
			}
			if st := shipments[o.id]; st == shipmentCreated {
				add(Violation{Rule: RuleCancelledShipment, OrderID: o.id, Detail: "shipment created"})
			}
		default:
			add(Violation{Rule: RuleNotFinal, OrderID: o.id, Detail: o.status.String()})
		}
	}
	for id, p := range payments {
		if !known[id] && (p.status == paymentAuthorized || p.captured != p.refunds) {
			add(Violation{Rule: RuleOrphanPayment, OrderID: id, Detail: fmt.Sprintf("payment status %d, captured %d, refunded %d", p.status, p.captured, p.refunds)})
		}
	}

	n, err := checkStock(ctx, dbs["inventory"], add)
	if err != nil {
		return Report{}, fmt.Errorf("audit: stock: %w", err)
	}
	r.Products = n
	slices.SortFunc(r.Violations, func(a, b Violation) int {
		return strings.Compare(a.OrderID+a.ProductID+a.Rule, b.OrderID+b.ProductID+b.Rule)
	})
	return r, nil
}

// checkStock checks every product's balance against its total stocked and its
// reserved and sold units against the reservations that explain them.
func checkStock(ctx context.Context, db *sqldb.DB, add func(Violation)) (int, error) {
	lines := map[string][2]int64{} // product -> held, committed
	err := query(ctx, db, `SELECT l.product_id, r.status, SUM(l.quantity) FROM reservation_lines l
		JOIN reservations r ON r.id = l.reservation_id GROUP BY l.product_id, r.status`, func(scan func(...any) error) error {
		var id string
		var st int
		var q int64
		if err := scan(&id, &st, &q); err != nil {
			return err
		}
		v := lines[id]
		switch st {
		case reservationHeld:
			v[0] += q
		case reservationCommitted:
			v[1] += q
		}
		lines[id] = v
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	err = query(ctx, db, `SELECT product_id, available, reserved, sold, total_stocked FROM stock`, func(scan func(...any) error) error {
		var id string
		var avail, reserved, sold, total int64
		if err := scan(&id, &avail, &reserved, &sold, &total); err != nil {
			return err
		}
		n++
		if avail < 0 || avail+reserved+sold != total {
			add(Violation{Rule: RuleStockBalance, ProductID: id, Detail: fmt.Sprintf("available %d + reserved %d + sold %d, total stocked %d", avail, reserved, sold, total)})
		}
		if held := lines[id][0]; held != reserved {
			add(Violation{Rule: RuleStockReserved, ProductID: id, Detail: fmt.Sprintf("reserved %d, held by reservations %d", reserved, held)})
		}
		if committed := lines[id][1]; committed != sold {
			add(Violation{Rule: RuleStockSold, ProductID: id, Detail: fmt.Sprintf("sold %d, committed by reservations %d", sold, committed)})
		}
		return nil
	})
	return n, err
}

func query(ctx context.Context, db *sqldb.DB, q string, row func(scan func(...any) error) error) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}
