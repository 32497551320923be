package domain_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/domain"
)

// One order used throughout: 2 x 129.99 + 3 x 15.00 + 5.99 shipping, in cents.
const (
	orderID   = "order-1"
	userID    = "user-1"
	idemKey   = "key-12345678"
	payID     = "pay-1"
	resID     = "res-1"
	shipID    = "ship-1"
	trackID   = "trk-1"
	lineTotal = 2*12_999 + 3*1_500
	total     = lineTotal + 599
)

func usd(units int64) domain.Money { return domain.Money{Units: units, Currency: "USD"} }

func pusd(units int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "USD", MinorUnits: units}
}

func address() domain.Address {
	return domain.Address{Name: "Ada Lovelace", Street: "1 Analytical Way", City: "London", PostalCode: "N1 9GU", CountryCode: "GB"}
}

func placeParams() domain.PlaceParams {
	return domain.PlaceParams{
		OrderID: orderID,
		UserID:  userID,
		Lines: []domain.Line{
			{ProductID: "espresso-machine", Name: "Espresso Machine", Quantity: 2, UnitPrice: usd(12_999)},
			{ProductID: "coffee-beans", Name: "Coffee Beans", Quantity: 3, UnitPrice: usd(1_500)},
		},
		ShippingCost:   usd(599),
		Address:        address(),
		PaymentToken:   "tok_visa",
		IdempotencyKey: idemKey,
	}
}

// The expected events are written out by hand, totals included, so the tests check
// the arithmetic rather than repeat it.
func placed(key string) *orderv1.OrderPlaced {
	return &orderv1.OrderPlaced{
		OrderId: orderID,
		UserId:  userID,
		Lines: []*orderv1.OrderLine{
			{ProductId: "espresso-machine", Name: "Espresso Machine", Quantity: 2, UnitPrice: pusd(12_999), LineTotal: pusd(25_998)},
			{ProductId: "coffee-beans", Name: "Coffee Beans", Quantity: 3, UnitPrice: pusd(1_500), LineTotal: pusd(4_500)},
		},
		Subtotal:     pusd(30_498),
		ShippingCost: pusd(599),
		Total:        pusd(31_097),
		ShippingAddress: &commonv1.Address{
			Name: "Ada Lovelace", Street: "1 Analytical Way", City: "London", PostalCode: "N1 9GU", CountryCode: "GB",
		},
		PaymentToken:   "tok_visa",
		IdempotencyKey: key,
	}
}

func authorized() *orderv1.OrderPaymentAuthorized {
	return &orderv1.OrderPaymentAuthorized{OrderId: orderID, PaymentId: payID, Amount: pusd(total)}
}

func reserved() *orderv1.OrderInventoryReserved {
	return &orderv1.OrderInventoryReserved{OrderId: orderID, ReservationId: resID}
}

func shipped() *orderv1.OrderShipmentCreated {
	return &orderv1.OrderShipmentCreated{OrderId: orderID, ShipmentId: shipID, TrackingId: trackID}
}

func captured() *orderv1.OrderPaymentCaptured {
	return &orderv1.OrderPaymentCaptured{OrderId: orderID, PaymentId: payID, Amount: pusd(total)}
}

func completed() *orderv1.OrderCompleted { return &orderv1.OrderCompleted{OrderId: orderID} }

func cancelling(reason string, byUser bool) *orderv1.OrderCancelling {
	return &orderv1.OrderCancelling{OrderId: orderID, Reason: reason, RequestedByUser: byUser}
}

func cancelled(reason string) *orderv1.OrderCancelled {
	return &orderv1.OrderCancelled{OrderId: orderID, Reason: reason}
}

// fixture is an order reached by a real event history.
type fixture struct {
	name    string
	state   domain.State
	history []domain.Event
}

func happyPath(n int) []domain.Event {
	all := []domain.Event{placed(idemKey), authorized(), reserved(), shipped(), captured(), completed()}
	return slices.Clone(all[:n])
}

// fixtures covers every state; CANCELLING and CANCELLED twice each, entered before
// and after the shipment, because what was recorded before cancelling matters.
func fixtures() []fixture {
	return []fixture{
		{"new", domain.StateNew, nil},
		{"pending", domain.StatePending, happyPath(1)},
		{"authorized", domain.StatePaymentAuthorized, happyPath(2)},
		{"reserved", domain.StateInventoryReserved, happyPath(3)},
		{"shipped", domain.StateShipmentCreated, happyPath(4)},
		{"captured", domain.StatePaymentCaptured, happyPath(5)},
		{"completed", domain.StateCompleted, happyPath(6)},
		{"cancelling-from-pending", domain.StateCancelling, append(happyPath(1), cancelling("changed my mind", true))},
		{"cancelling-from-captured", domain.StateCancelling, append(happyPath(5), cancelling("parcel lost", false))},
		{"cancelled-from-reserved", domain.StateCancelled, append(happyPath(3), cancelling("changed my mind", true), cancelled("changed my mind"))},
		{"cancelled-from-shipped", domain.StateCancelled, append(happyPath(4), cancelling("carrier refused", false), cancelled("carrier refused"))},
	}
}

// load rehydrates f, or returns the zero Order for the empty history.
func (f fixture) load(t testing.TB) *domain.Order {
	t.Helper()
	if len(f.history) == 0 {
		return &domain.Order{}
	}
	o, err := domain.Rehydrate(f.history)
	if err != nil {
		t.Fatalf("fixture %s: %v", f.name, err)
	}
	if o.State() != f.state {
		t.Fatalf("fixture %s: state %s, want %s", f.name, o.State(), f.state)
	}
	return o
}

func assertEvents(t *testing.T, got, want []domain.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), text(got), len(want), text(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("event %d:\n got %s %s\nwant %s %s", i, domain.EventType(got[i]), prototext.Format(got[i]),
				domain.EventType(want[i]), prototext.Format(want[i]))
		}
	}
}

func text(evs []domain.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, domain.EventType(e)+"{"+prototext.MarshalOptions{}.Format(e)+"}")
	}
	return out
}
