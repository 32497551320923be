package app

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/services/order/domain"
)

// kvSnapshots is the KV bucket the service uses, reached directly: package kvstore
// imports app, so this in-package benchmark cannot import it.
type kvSnapshots struct{ kv jetstream.KeyValue }

func (s kvSnapshots) Get(ctx context.Context, id string) ([]byte, bool, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return e.Value(), true, nil
}

func (s kvSnapshots) Put(ctx context.Context, id string, data []byte) error {
	_, err := s.kv.Put(ctx, id, data)
	return err
}

// BenchmarkLoad compares loading an aggregate from its whole stream with loading
// from the latest snapshot plus the events after it, on the JetStream event store
// of an embedded server.
//
// An order's state machine admits at most six events, so the 1,000-event stream is
// made of decodable order events folded by a counter instead of the aggregate: it
// measures the load path (JetStream read, decode, upcast check, fold) that a long
// stream would pay. Its snapshot is the average case of -snapshot-every=50: 25
// events behind the head. The "order" cases load a real six-event order with the
// real aggregate, snapshot every 4 events (so 2 events are read after it).
func BenchmarkLoad(b *testing.B) {
	_, nc := natstest.Connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bench_snapshots", History: 1})
	if err != nil {
		b.Fatal(err)
	}
	store := eventstore.NewJetStream(js)
	snaps := kvSnapshots{kv}
	repo := NewRepository(store, WithSnapshots(snaps, 4))

	// A real order, completed: 6 events, snapshot at 4.
	orderID := uuid.Must(uuid.NewV7()).String()
	placed := domain.PlaceParams{
		OrderID: orderID, UserID: "alice", PaymentToken: "tok_visa", IdempotencyKey: "bench-key",
		Lines:        []domain.Line{{ProductID: "french-press", Name: "French Press", Quantity: 2, UnitPrice: domain.NewMoney(3900, "USD")}},
		ShippingCost: domain.NewMoney(499, "USD"),
		Address:      domain.Address{Name: "A", Street: "S", City: "C", PostalCode: "P", CountryCode: "US"},
	}
	for _, step := range []func(o *domain.Order) ([]domain.Event, error){
		func(o *domain.Order) ([]domain.Event, error) { return o.Place(placed) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved("res") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordShipmentCreated("ship", "track") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentCaptured("pay", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.Complete() },
	} {
		if _, err := repo.Update(ctx, orderID, step); err != nil {
			b.Fatal(err)
		}
	}
	completed, err := repo.LoadWithoutSnapshot(ctx, orderID)
	if err != nil {
		b.Fatal(err)
	}

	// A 1,000-event stream, with a snapshot at 975.
	const streamLen, snapAt = 1000, 975
	longID := uuid.Must(uuid.NewV7()).String()
	var batch []eventstore.Event
	for i := 1; i <= streamLen; i++ {
		se, err := repo.codec.Encode(&orderv1.OrderPaymentAuthorized{OrderId: longID, PaymentId: "pay", Amount: &commonv1.Money{CurrencyCode: "USD", MinorUnits: 8299}})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, se)
		if len(batch) == 100 {
			if _, err := store.Append(ctx, StreamName(longID), eventstore.Version(i-100), batch...); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	snap := completed.Snapshot()
	snap.ID, snap.Version = longID, snapAt
	restored, err := domain.FromSnapshot(snap)
	if err != nil {
		b.Fatal(err)
	}
	data, err := encodeSnapshot(restored)
	if err != nil {
		b.Fatal(err)
	}
	if err := snaps.Put(ctx, longID, data); err != nil {
		b.Fatal(err)
	}

	countFrom := func(b *testing.B, after int64) int64 {
		n := after
		found, err := repo.replay(ctx, longID, after, func(domain.Event) error { n++; return nil })
		if err != nil || !found {
			b.Fatal(found, err)
		}
		return n
	}

	b.Run("events=1000/snapshot=none", func(b *testing.B) {
		for b.Loop() {
			if n := countFrom(b, 0); n != streamLen {
				b.Fatalf("folded %d events", n)
			}
		}
	})
	b.Run("events=1000/snapshot=975", func(b *testing.B) {
		for b.Loop() {
			o := repo.snapshot(ctx, longID)
			if o == nil {
				b.Fatal("no snapshot")
			}
			if n := countFrom(b, o.Version()); n != streamLen {
				b.Fatalf("folded up to %d", n)
			}
		}
	})
	b.Run("order=6-events/snapshot=none", func(b *testing.B) {
		for b.Loop() {
			if _, err := repo.LoadWithoutSnapshot(ctx, orderID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("order=6-events/snapshot=4", func(b *testing.B) {
		for b.Loop() {
			if _, err := repo.Load(ctx, orderID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
