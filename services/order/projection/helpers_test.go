package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/order/domain"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func usd(u int64) domain.Money { return domain.Money{Units: u, Currency: "USD"} }

// products the generated orders buy from.
var products = []struct {
	id, name string
	price    int64
}{
	{"espresso-machine", "Espresso Machine", 12_999},
	{"coffee-beans", "Coffee Beans", 1_500},
	{"grinder", "Grinder", 8_950},
	{"milk-jug", "Milk Jug", 1_299},
	{"tamper", "Tamper", 2_450},
}

func placeParams(rng *rand.Rand, orderID, userID string) domain.PlaceParams {
	n := 1 + rng.IntN(3)
	p := domain.PlaceParams{
		OrderID: orderID, UserID: userID, ShippingCost: usd(599), PaymentToken: "tok_visa",
		Address: domain.Address{Name: "Ada Lovelace", Street: "1 Analytical Way", City: "London", PostalCode: "N1 9GU", CountryCode: "GB"},
	}
	for _, i := range rng.Perm(len(products))[:n] {
		pr := products[i]
		p.Lines = append(p.Lines, domain.Line{ProductID: pr.id, Name: pr.name, Quantity: int32(1 + rng.IntN(4)), UnitPrice: usd(pr.price)})
	}
	return p
}

// history returns a valid history of one order, decided by the domain's commands:
// most complete, some are cancelled by a failed saga step or by the user, some stop
// half-way (still in flight).
func history(t testing.TB, rng *rand.Rand, orderID, userID string) []domain.Event {
	t.Helper()
	o := &domain.Order{}
	var out []domain.Event
	do := func(evs []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("generate %s: %v", orderID, err)
		}
		for _, e := range evs {
			if err := o.Apply(e); err != nil {
				t.Fatalf("generate %s: apply: %v", orderID, err)
			}
		}
		out = append(out, evs...)
	}
	do(o.Place(placeParams(rng, orderID, userID)))
	steps := []func(){
		func() { do(o.RecordPaymentAuthorized("pay-"+orderID, o.Total())) },
		func() { do(o.RecordInventoryReserved("res-" + orderID)) },
		func() { do(o.RecordShipmentCreated("ship-"+orderID, "trk-"+orderID)) },
		func() { do(o.RecordPaymentCaptured("pay-"+orderID, o.Total())) },
		func() { do(o.Complete()) },
	}
	switch r := rng.IntN(10); {
	case r < 6: // completes
		for _, s := range steps {
			s()
		}
	case r < 8: // a saga step fails
		for _, s := range steps[:rng.IntN(len(steps))] {
			s()
		}
		do(o.RequestCancel("", false))
		do(o.ConfirmCancelled())
	case r < 9: // the user cancels before shipping
		for _, s := range steps[:rng.IntN(3)] {
			s()
		}
		do(o.CancelByUser(userID, "changed my mind"))
		do(o.ConfirmCancelled())
	default: // still in flight
		for _, s := range steps[:rng.IntN(len(steps))] {
			s()
		}
	}
	return out
}

func orderID(rng *rand.Rand, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), i)
}

// storedEvent is e as version v of orderID's stream, at time at, as the order
// service stores it.
func storedEvent(t testing.TB, orderID string, v int, e domain.Event, at time.Time) eventstore.Event {
	t.Helper()
	data, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Event{
		ID: fmt.Sprintf("%s-%d", orderID, v), Type: domain.EventType(e), Data: data, Time: at,
		Metadata: map[string]string{"schema-version": "1"},
	}
}

// appendEvent stores e as version v of orderID's stream, at time at.
func appendEvent(ctx context.Context, t testing.TB, s eventstore.Store, orderID string, v int, e domain.Event, at time.Time) eventstore.Position {
	t.Helper()
	stream := Category + "-" + orderID
	if _, err := s.Append(ctx, stream, eventstore.Version(v-1), storedEvent(t, orderID, v, e, at)); err != nil {
		t.Fatalf("append %s v%d: %v", stream, v, err)
	}
	return head(ctx, t, s)
}

// appendAll stores every history in turn.
func appendAll(ctx context.Context, t testing.TB, s eventstore.Store, orderID string, evs []domain.Event, at time.Time) eventstore.Position {
	t.Helper()
	var pos eventstore.Position
	for i, e := range evs {
		pos = appendEvent(ctx, t, s, orderID, i+1, e, at.Add(time.Duration(i)*time.Second))
	}
	return pos
}

// head returns the position of the category's last event.
func head(ctx context.Context, t testing.TB, s eventstore.Store) eventstore.Position {
	t.Helper()
	var pos eventstore.Position
	for {
		evs, err := s.ReadCategory(ctx, Category, pos, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return pos
		}
		pos = evs[len(evs)-1].Position
	}
}

// generated is a set of histories appended interleaved, as concurrent orders are.
type generated struct {
	histories map[string][]domain.Event
	users     map[string]string
}

// generate appends n generated orders of a few users to s, interleaving their events
// (up to 64 orders in flight), with event times 1ms apart.
func generate(ctx context.Context, t testing.TB, s eventstore.Store, seed uint64, n int) generated {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	g := generated{histories: map[string][]domain.Event{}, users: map[string]string{}}
	type flight struct {
		id   string
		evs  []domain.Event
		next int
	}
	var pool []*flight
	clock := epoch
	started := 0
	for started < n || len(pool) > 0 {
		for started < n && len(pool) < 64 {
			id := orderID(rng, started)
			user := fmt.Sprintf("user-%d", rng.IntN(50))
			evs := history(t, rng, id, user)
			g.histories[id], g.users[id] = evs, user
			pool = append(pool, &flight{id: id, evs: evs})
			started++
		}
		i := rng.IntN(len(pool))
		f := pool[i]
		clock = clock.Add(time.Millisecond)
		data, err := proto.Marshal(f.evs[f.next])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, Category+"-"+f.id, eventstore.Version(f.next), eventstore.Event{
			ID: fmt.Sprintf("%s-%d", f.id, f.next+1), Type: domain.EventType(f.evs[f.next]), Data: data, Time: clock,
		}); err != nil {
			t.Fatal(err)
		}
		if f.next++; f.next == len(f.evs) {
			pool[i] = pool[len(pool)-1]
			pool = pool[:len(pool)-1]
		}
	}
	return g
}

// running is a Projector run in the background.
type running struct {
	*Projector
	cancel context.CancelFunc
	done   chan error
}

func startProjector(t testing.TB, p *Projector) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Projector: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and returns its error (nil after a clean stop); it is safe to repeat.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(time.Minute):
		t.Fatal("projector did not stop")
		return nil
	}
}

// waitFor waits until p applied pos or Run failed.
func (r *running) waitFor(t testing.TB, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- r.WaitFor(ctx, pos) }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("projector did not reach position %d: %v", pos, err)
		}
	case err := <-r.done:
		r.done <- err // for stop
		t.Fatalf("projector stopped before position %d: %v", pos, err)
	}
}

func newTestProjector(t testing.TB, db *sqldb.DB, s eventstore.Store, opts ...Option) *Projector {
	t.Helper()
	p, err := NewProjector(db, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// dump returns every row of table, ordered by its key, as text.
func dump(ctx context.Context, t testing.TB, db *sqldb.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	dumpOrders = `SELECT ` + orderColumns + ` FROM orders ORDER BY id`
	dumpSales  = `SELECT product_id, currency, name, units, revenue, order_count FROM sales_by_product ORDER BY product_id, currency`
)

// wantSales sums the lines of the completed histories.
func wantSales(t testing.TB, hs map[string][]domain.Event) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	for _, evs := range hs {
		o, err := domain.Rehydrate(evs)
		if err != nil {
			t.Fatal(err)
		}
		if o.State() != domain.StateCompleted {
			continue
		}
		for _, l := range o.Lines() {
			lt, _ := l.Total()
			s := out[l.ProductID]
			out[l.ProductID] = [2]int64{s[0] + int64(l.Quantity), s[1] + lt.Units}
		}
	}
	return out
}

func checkSales(ctx context.Context, t testing.TB, q *Queries, want map[string][2]int64) {
	t.Helper()
	got, err := q.SalesByProduct(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("sales rows = %d, want %d", len(got), len(want))
	}
	for _, s := range got {
		w := want[s.GetProductId()]
		if s.GetUnits() != w[0] || s.GetRevenue().GetMinorUnits() != w[1] || s.GetRevenue().GetCurrencyCode() != "USD" {
			t.Errorf("sales of %s = %d units, %d %s; want %d units, %d USD",
				s.GetProductId(), s.GetUnits(), s.GetRevenue().GetMinorUnits(), s.GetRevenue().GetCurrencyCode(), w[0], w[1])
		}
	}
}

// checkOrders compares every read-model row with the order its history rehydrates to.
func checkOrders(ctx context.Context, t testing.TB, q *Queries, hs map[string][]domain.Event) {
	t.Helper()
	for id, evs := range hs {
		want, err := domain.Rehydrate(evs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.GetOrder(ctx, id)
		if err != nil {
			t.Fatalf("GetOrder(%s): %v", id, err)
		}
		if int(got.GetStatus()) != int(want.State()) || got.GetVersion() != want.Version() ||
			got.GetPaymentId() != want.PaymentID() || got.GetShipmentId() != want.ShipmentID() ||
			got.GetTrackingId() != want.TrackingID() || got.GetCancelReason() != want.CancelReason() ||
			got.GetTotal().GetMinorUnits() != want.Total().Units || got.GetUserId() != want.UserID() ||
			len(got.GetLines()) != len(want.Lines()) {
			t.Fatalf("order %s: read model %v\nwant state %s v%d payment %q shipment %q tracking %q reason %q total %s",
				id, got, want.State(), want.Version(), want.PaymentID(), want.ShipmentID(), want.TrackingID(), want.CancelReason(), want.Total())
		}
	}
}

var errInjected = errors.New("injected crash before commit")

// countRows returns the number of rows of table.
func countRows(ctx context.Context, t testing.TB, db *sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return n
}
