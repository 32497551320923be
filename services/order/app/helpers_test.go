package app_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
	"github.com/eventshop/eventshop/services/order/kvstore"
)

// jetStreamEnv returns an event store and a snapshot bucket on a fresh embedded server.
func jetStreamEnv(t *testing.T) (eventstore.Store, *kvstore.Snapshots, jetstream.JetStream) {
	t.Helper()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := kvstore.NewSnapshots(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.NewJetStream(js), snaps, js
}

func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

var (
	usd     = func(units int64) domain.Money { return domain.NewMoney(units, "USD") }
	address = domain.Address{Name: "Alice Example", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US"}
)

func placeParams(orderID, user string) domain.PlaceParams {
	return domain.PlaceParams{
		OrderID: orderID,
		UserID:  user,
		Lines: []domain.Line{
			{ProductID: "espresso-machine", Name: "Espresso Machine Duo", Quantity: 1, UnitPrice: usd(89900)},
			{ProductID: "burr-grinder", Name: "Conical Burr Grinder", Quantity: 2, UnitPrice: usd(14900)},
		},
		ShippingCost:   usd(499),
		Address:        address,
		PaymentToken:   "tok_visa",
		IdempotencyKey: "key-" + orderID[:8],
	}
}

// step is one command of an order's life, as the app layer would run it.
type step func(o *domain.Order) ([]domain.Event, error)

// happyPath and cancelPath are the longest histories the state machine allows.
func happyPath(orderID, user string) []step {
	return []step{
		func(o *domain.Order) ([]domain.Event, error) { return o.Place(placeParams(orderID, user)) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-1", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved("res-1") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordShipmentCreated("ship-1", "TRACK-1") },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentCaptured("pay-1", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.Complete() },
	}
}

func cancelPath(orderID, user string) []step {
	return []step{
		func(o *domain.Order) ([]domain.Event, error) { return o.Place(placeParams(orderID, user)) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-1", o.Total()) },
		func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved("res-1") },
		func(o *domain.Order) ([]domain.Event, error) { return o.CancelByUser(user, "changed my mind") },
		func(o *domain.Order) ([]domain.Event, error) { return o.ConfirmCancelled() },
	}
}

func run(t *testing.T, ctx context.Context, repo *app.Repository, id string, steps []step) {
	t.Helper()
	for i, s := range steps {
		if _, err := repo.Update(ctx, id, s); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
}
