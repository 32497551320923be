package projection

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/order/domain"
)

// Each event type moves the row as the aggregate moves, one event at a time.
func TestEveryEventTypeUpdatesTheRow(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		r := startProjector(t, newTestProjector(t, db, store))
		q := NewQueries(db)
		rng := rand.New(rand.NewPCG(7, 7))

		for _, tc := range []struct {
			name    string
			history func(id string) []domain.Event
		}{
			{"completed", func(id string) []domain.Event {
				for {
					h := history(t, rng, id, "user-1")
					if len(h) == 6 {
						return h
					}
				}
			}},
			{"cancelled by saga after capture", func(id string) []domain.Event {
				o := &domain.Order{}
				var out []domain.Event
				do := func(evs []domain.Event, err error) {
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range evs {
						if err := o.Apply(e); err != nil {
							t.Fatal(err)
						}
					}
					out = append(out, evs...)
				}
				do(o.Place(placeParams(rng, id, "user-1")))
				do(o.RecordPaymentAuthorized("pay-"+id, o.Total()))
				do(o.RecordInventoryReserved("res-" + id))
				do(o.RecordShipmentCreated("ship-"+id, "trk-"+id))
				do(o.RecordPaymentCaptured("pay-"+id, o.Total()))
				do(o.RequestCancel("carrier refused the parcel", false))
				do(o.ConfirmCancelled())
				return out
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := orderID(rng, 1)
				h := tc.history(id)
				for i, e := range h {
					at := epoch.Add(time.Duration(i) * time.Minute)
					r.waitFor(t, appendEvent(ctx, t, store, id, i+1, e, at))
					want, err := domain.Rehydrate(h[:i+1])
					if err != nil {
						t.Fatal(err)
					}
					got, err := q.GetOrder(ctx, id)
					if err != nil {
						t.Fatalf("after %s: %v", domain.EventType(e), err)
					}
					if int(got.GetStatus()) != int(want.State()) || got.GetVersion() != int64(i+1) ||
						got.GetPaymentId() != want.PaymentID() || got.GetShipmentId() != want.ShipmentID() ||
						got.GetTrackingId() != want.TrackingID() || got.GetCancelReason() != want.CancelReason() {
						t.Fatalf("after %s: row %v, want state %s payment %q shipment %q tracking %q reason %q",
							domain.EventType(e), got, want.State(), want.PaymentID(), want.ShipmentID(), want.TrackingID(), want.CancelReason())
					}
					if !got.GetCreateTime().AsTime().Equal(epoch) || !got.GetUpdateTime().AsTime().Equal(at) {
						t.Errorf("after %s: created %v updated %v, want %v and %v", domain.EventType(e),
							got.GetCreateTime().AsTime(), got.GetUpdateTime().AsTime(), epoch, at)
					}
				}
				got, err := q.GetOrder(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				want, err := domain.Rehydrate(h)
				if err != nil {
					t.Fatal(err)
				}
				if got.GetTotal().GetMinorUnits() != want.Total().Units || got.GetSubtotal().GetMinorUnits() != want.Subtotal().Units ||
					got.GetShippingCost().GetMinorUnits() != want.ShippingCost().Units || got.GetTotal().GetCurrencyCode() != "USD" ||
					got.GetShippingAddress().GetCity() != want.Address().City || len(got.GetLines()) != len(want.Lines()) {
					t.Errorf("money, address or lines differ: %v", got)
				}
				for i, l := range want.Lines() {
					gl := got.GetLines()[i]
					lt, _ := l.Total()
					if gl.GetProductId() != l.ProductID || gl.GetName() != l.Name || gl.GetQuantity() != l.Quantity ||
						gl.GetUnitPrice().GetMinorUnits() != l.UnitPrice.Units || gl.GetLineTotal().GetMinorUnits() != lt.Units {
						t.Errorf("line %d = %v, want %+v", i, gl, l)
					}
				}
			})
		}
		// Only the completed order counts as sales.
		all := map[string][]domain.Event{}
		for _, o := range mustList(ctx, t, q, "user-1") {
			evs, err := store.ReadStream(ctx, Category+"-"+o.GetId(), 0)
			if err != nil {
				t.Fatal(err)
			}
			all[o.GetId()] = decodeAll(t, evs)
		}
		checkSales(ctx, t, q, wantSales(t, all))

		if _, err := q.GetOrder(ctx, "no-such-order"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetOrder(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

func decodeAll(t testing.TB, evs []eventstore.Event) []domain.Event {
	t.Helper()
	var out []domain.Event
	for _, e := range evs {
		de, err := decode(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, de)
	}
	return out
}

func mustList(ctx context.Context, t testing.TB, q *Queries, user string) []*orderv1.Order {
	t.Helper()
	var out []*orderv1.Order
	token := ""
	for {
		page, next, err := q.ListOrdersByUser(ctx, user, 0, MaxPageSize, token)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		token = next
	}
}

// Paging with a status filter while the same user keeps placing orders returns every
// order that existed at the start exactly once, newest first.
func TestKeysetPaginationWhileOrdersArrive(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		r := startProjector(t, newTestProjector(t, db, store))
		q := NewQueries(db)
		rng := rand.New(rand.NewPCG(3, 3))

		// 30 pending orders of user-1 (every third one placed at the same instant, so
		// the id breaks ties) and some of other users and statuses around them.
		var want []string
		var pos eventstore.Position
		at := epoch
		for i := range 60 {
			id := orderID(rng, i)
			if i%3 != 0 {
				at = at.Add(time.Second)
			}
			p := placeParams(rng, id, "user-1")
			switch i % 4 {
			case 1:
				p.UserID = "user-2"
			case 3:
				o := &domain.Order{}
				evs, _ := o.Place(p)
				_ = o.Apply(evs[0])
				auth, err := o.RecordPaymentAuthorized("pay", o.Total())
				if err != nil {
					t.Fatal(err)
				}
				appendEvent(ctx, t, store, id, 1, evs[0], at)
				pos = appendEvent(ctx, t, store, id, 2, auth[0], at)
				continue
			default:
				want = append(want, id)
			}
			evs, err := (&domain.Order{}).Place(p)
			if err != nil {
				t.Fatal(err)
			}
			pos = appendEvent(ctx, t, store, id, 1, evs[0], at)
		}
		r.waitFor(t, pos)
		// Expected order: newest first, ties by id descending.
		rows := map[string]*orderv1.Order{}
		for _, o := range mustList(ctx, t, q, "user-1") {
			rows[o.GetId()] = o
		}
		slices.SortFunc(want, func(a, b string) int {
			ta, tb := rows[a].GetCreateTime().AsTime(), rows[b].GetCreateTime().AsTime()
			if c := tb.Compare(ta); c != 0 {
				return c
			}
			return strings.Compare(b, a)
		})

		var got []string
		token := ""
		pending := orderv1.OrderStatus_ORDER_STATUS_PENDING
		for page := 0; ; page++ {
			orders, next, err := q.ListOrdersByUser(ctx, "user-1", pending, 4, token)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range orders {
				if o.GetStatus() != pending || o.GetUserId() != "user-1" {
					t.Errorf("page %d holds %s (%s of %s)", page, o.GetId(), o.GetStatus(), o.GetUserId())
				}
				got = append(got, o.GetId())
			}
			if next == "" {
				break
			}
			token = next
			// A new pending order of the same user arrives between pages.
			id := orderID(rng, 1000+page)
			evs, _ := (&domain.Order{}).Place(placeParams(rng, id, "user-1"))
			at = at.Add(time.Second)
			r.waitFor(t, appendEvent(ctx, t, store, id, 1, evs[0], at))
		}
		if !slices.Equal(got, want) {
			t.Errorf("paged ids:\n got %v\nwant %v", got, want)
		}

		// A token only fits the listing it came from.
		_, next, err := q.ListOrdersByUser(ctx, "user-1", pending, 2, "")
		if err != nil || next == "" {
			t.Fatalf("first page: next %q, %v", next, err)
		}
		for _, tc := range []struct {
			name   string
			user   string
			status orderv1.OrderStatus
			token  string
		}{
			{"other status", "user-1", orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED, next},
			{"other user", "user-2", pending, next},
			{"not base64", "user-1", pending, "%%%"},
			{"not a cursor", "user-1", pending, "bm90IGpzb24"},
		} {
			if _, _, err := q.ListOrdersByUser(ctx, tc.user, tc.status, 2, tc.token); !errors.Is(err, ErrInvalidPageToken) {
				t.Errorf("%s: error = %v, want ErrInvalidPageToken", tc.name, err)
			}
		}
	})
}

// A crash after the read-model writes but before the commit loses the whole
// transaction, checkpoint included; the restarted projector applies those events
// again, and every order reflects each event exactly once.
func TestCrashBeforeCommitReplaysOnce(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		g := generate(ctx, t, store, 11, 60)
		last := head(ctx, t, store)

		// Crash in the transaction that completes the first completed order, so a
		// replay that applied twice would double its sales.
		var crashOn string
		for _, e := range mustReadAll(ctx, t, store) {
			if strings.HasSuffix(e.Type, ".OrderCompleted") {
				crashOn = e.ID
				break
			}
		}
		var crashed sync.Once
		p := newTestProjector(t, db, store, WithBatchSize(7))
		var before eventstore.Position
		p.beforeCommit = func(evs []eventstore.Event) error {
			for _, e := range evs {
				if e.ID == crashOn {
					err := error(nil)
					crashed.Do(func() { err = errInjected })
					return err
				}
			}
			return nil
		}
		if err := p.Run(ctx); !errors.Is(err, errInjected) {
			t.Fatalf("Run = %v, want the injected crash", err)
		}
		before = p.Position()
		stored, err := p.loadCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stored != before || before >= last {
			t.Fatalf("after crash: stored checkpoint %d, projector at %d, head %d", stored, before, last)
		}
		sales, err := NewQueries(db).SalesByProduct(ctx, 0)
		if err != nil || len(sales) != 0 {
			t.Fatalf("sales after the crashed commit = %v, %v; want none", sales, err)
		}

		// Restart: a fresh projector resumes from the stored checkpoint.
		r := startProjector(t, newTestProjector(t, db, store, WithBatchSize(7)))
		r.waitFor(t, last)
		q := NewQueries(db)
		checkOrders(ctx, t, q, g.histories)
		checkSales(ctx, t, q, wantSales(t, g.histories))
	})
}

func mustReadAll(ctx context.Context, t testing.TB, s eventstore.Store) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadCategory(ctx, Category, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Replaying events the rows already reflect changes nothing (the version check).
func TestReplayIsIdempotent(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		g := generate(ctx, t, store, 5, 40)
		r := startProjector(t, newTestProjector(t, db, store))
		r.waitFor(t, head(ctx, t, store))
		before := dump(ctx, t, db, dumpOrders)
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		// Another checkpoint name replays everything into the same tables.
		r2 := startProjector(t, newTestProjector(t, db, store, WithName("replay")))
		r2.waitFor(t, head(ctx, t, store))
		if after := dump(ctx, t, db, dumpOrders); !slices.Equal(before, after) {
			t.Error("replaying the category changed the orders table")
		}
		checkSales(ctx, t, NewQueries(db), wantSales(t, g.histories))
	})
}

// An event type this version cannot read is skipped (logged once), the order's
// version and the checkpoint still move, and later events of the order apply.
func TestUnknownEventTypesAreSkipped(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := testCtx(t)
		store := eventstore.NewMemory()
		var logs bytes.Buffer
		var mu sync.Mutex
		logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
		r := startProjector(t, newTestProjector(t, db, store, WithLogger(logger)))
		rng := rand.New(rand.NewPCG(9, 9))
		id := orderID(rng, 0)
		o := &domain.Order{}
		placed, _ := o.Place(placeParams(rng, id, "user-1"))
		_ = o.Apply(placed[0])
		appendEvent(ctx, t, store, id, 1, placed[0], epoch)
		for v := 2; v <= 3; v++ {
			if _, err := store.Append(ctx, Category+"-"+id, eventstore.Version(v-1), eventstore.Event{
				ID: id + "-gift-" + string(rune('0'+v)), Type: "eventshop.order.v2.OrderGiftWrapped", Data: []byte{0x0a, 0x01, 'x'}, Time: epoch,
			}); err != nil {
				t.Fatal(err)
			}
		}
		auth, err := o.RecordPaymentAuthorized("pay-1", o.Total())
		if err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, appendEvent(ctx, t, store, id, 4, auth[0], epoch.Add(time.Minute)))
		got, err := NewQueries(db).GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetVersion() != 4 || got.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED || got.GetPaymentId() != "pay-1" {
			t.Errorf("row = %v, want version 4, PAYMENT_AUTHORIZED, pay-1", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if n := strings.Count(logs.String(), "projection skips events it cannot read"); n != 1 {
			t.Errorf("unknown type logged %d times, want once:\n%s", n, logs.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Lag is the age of the oldest unapplied event, zero once caught up, and is exported
// as the projection.lag.seconds gauge.
func TestLag(t *testing.T) {
	db := sqltest.Open(t, sqldb.SQLite)
	ctx := testCtx(t)
	store := eventstore.NewMemory()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	p := newTestProjector(t, db, store, WithMeterProvider(mp))
	now := epoch.Add(time.Hour)
	p.now = func() time.Time { return now }

	rng := rand.New(rand.NewPCG(1, 2))
	id := orderID(rng, 0)
	evs, _ := (&domain.Order{}).Place(placeParams(rng, id, "user-1"))
	last := appendEvent(ctx, t, store, id, 1, evs[0], epoch.Add(45*time.Minute))

	lag, err := p.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Behind != 15*time.Minute || lag.Position != eventstore.Start {
		t.Errorf("before running: lag %+v, want 15m behind at Start", lag)
	}
	if got := gauge(t, reader); got != (15 * time.Minute).Seconds() {
		t.Errorf("gauge = %v, want %v", got, (15 * time.Minute).Seconds())
	}

	r := startProjector(t, p)
	r.waitFor(t, last)
	lag, err = p.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Behind != 0 || lag.Position != last || lag.Applied != 1 || !lag.LastEventTime.Equal(epoch.Add(45*time.Minute)) {
		t.Errorf("caught up: lag %+v, want 0 behind at %d after 1 event", lag, last)
	}
	if got := gauge(t, reader); got != 0 {
		t.Errorf("gauge = %v, want 0", got)
	}
}

func gauge(t *testing.T, reader *sdkmetric.ManualReader) float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "projection.lag.seconds" {
				continue
			}
			g, ok := m.Data.(metricdata.Gauge[float64])
			if !ok || len(g.DataPoints) != 1 {
				t.Fatalf("projection.lag.seconds = %#v, want one float64 gauge point", m.Data)
			}
			dp := g.DataPoints[0]
			if v, ok := dp.Attributes.Value(attribute.Key("projection")); !ok || v.AsString() != DefaultName {
				t.Errorf("gauge attributes = %v, want projection=%s", dp.Attributes, DefaultName)
			}
			return dp.Value
		}
	}
	t.Fatal("no projection.lag.seconds metric")
	return 0
}
