package domain_test

import (
	"errors"
	"math"
	"testing"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/domain"
)

func TestPlaceComputesTotals(t *testing.T) {
	t.Parallel()
	p := placeParams()
	p.Lines = append(p.Lines, domain.Line{ProductID: "grinder", Name: "Grinder", Quantity: 7, UnitPrice: usd(4_321)})
	p.ShippingCost = usd(0)

	evs, err := (&domain.Order{}).Place(p)
	if err != nil {
		t.Fatal(err)
	}
	o, err := domain.Rehydrate(evs)
	if err != nil {
		t.Fatal(err)
	}
	const want = 2*12_999 + 3*1_500 + 7*4_321
	if o.Subtotal() != usd(want) || o.ShippingCost() != usd(0) || o.Total() != usd(want) {
		t.Fatalf("subtotal %s shipping %s total %s, want %d USD", o.Subtotal(), o.ShippingCost(), o.Total(), want)
	}
	if o.State() != domain.StatePending || o.Version() != 1 || o.ID() != orderID || o.UserID() != userID {
		t.Fatalf("placed order: state %s version %d id %q user %q", o.State(), o.Version(), o.ID(), o.UserID())
	}
	if o.Address() != address() || o.PaymentToken() != "tok_visa" || o.IdempotencyKey() != idemKey {
		t.Fatalf("placed order lost data: %+v", o.Snapshot())
	}
	lines := o.Lines()
	if len(lines) != 3 || lines[2] != p.Lines[2] {
		t.Fatalf("lines %+v, want %+v", lines, p.Lines)
	}
	lines[0].Quantity = 99
	if o.Lines()[0].Quantity == 99 {
		t.Fatal("Lines shares its slice with the order")
	}
	ev := evs[0].(*orderv1.OrderPlaced)
	if lt := ev.GetLines()[2].GetLineTotal(); lt.GetMinorUnits() != 7*4_321 || lt.GetCurrencyCode() != "USD" {
		t.Fatalf("line total %v, want %d USD", lt, 7*4_321)
	}
	if ev.GetSubtotal().GetMinorUnits() != want || ev.GetTotal().GetMinorUnits() != want {
		t.Fatalf("event subtotal %v total %v, want %d", ev.GetSubtotal(), ev.GetTotal(), want)
	}
}

// A client never sets a total: the only money Place takes is unit prices and
// shipping, and the order total moves with them.
func TestPlaceTotalFollowsPrices(t *testing.T) {
	t.Parallel()
	p := placeParams()
	p.Lines[0].UnitPrice = usd(1)
	evs, err := (&domain.Order{}).Place(p)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := domain.Rehydrate(evs)
	if want := usd(2*1 + 3*1_500 + 599); o.Total() != want {
		t.Fatalf("total %s, want %s", o.Total(), want)
	}
}

func TestPlaceRejectsInvalidOrders(t *testing.T) {
	t.Parallel()
	eur := domain.Money{Units: 100, Currency: "EUR"}
	tests := []struct {
		name    string
		mutate  func(p *domain.PlaceParams)
		wantErr error // in addition to ErrInvalidOrder
	}{
		{name: "no order id", mutate: func(p *domain.PlaceParams) { p.OrderID = "" }},
		{name: "no user", mutate: func(p *domain.PlaceParams) { p.UserID = "" }},
		{name: "no payment token", mutate: func(p *domain.PlaceParams) { p.PaymentToken = "" }},
		{name: "no lines", mutate: func(p *domain.PlaceParams) { p.Lines = nil }},
		{name: "no address", mutate: func(p *domain.PlaceParams) { p.Address = domain.Address{} }},
		{name: "no country", mutate: func(p *domain.PlaceParams) { p.Address.CountryCode = "" }},
		{name: "zero quantity", mutate: func(p *domain.PlaceParams) { p.Lines[1].Quantity = 0 }},
		{name: "negative quantity", mutate: func(p *domain.PlaceParams) { p.Lines[0].Quantity = -1 }},
		{name: "no product id", mutate: func(p *domain.PlaceParams) { p.Lines[0].ProductID = "" }},
		{name: "product twice", mutate: func(p *domain.PlaceParams) { p.Lines[1].ProductID = p.Lines[0].ProductID }},
		{name: "negative price", mutate: func(p *domain.PlaceParams) { p.Lines[0].UnitPrice = usd(-1) }},
		{name: "no currency", mutate: func(p *domain.PlaceParams) { p.Lines[0].UnitPrice.Currency = "" }},
		{name: "negative shipping", mutate: func(p *domain.PlaceParams) { p.ShippingCost = usd(-1) }},
		{name: "lines in two currencies", mutate: func(p *domain.PlaceParams) { p.Lines[1].UnitPrice = eur }, wantErr: domain.ErrCurrencyMismatch},
		{name: "shipping in another currency", mutate: func(p *domain.PlaceParams) { p.ShippingCost = eur }, wantErr: domain.ErrCurrencyMismatch},
		{name: "line total overflows", mutate: func(p *domain.PlaceParams) { p.Lines[0].UnitPrice = usd(math.MaxInt64/2 + 1) }, wantErr: domain.ErrOverflow},
		{name: "subtotal overflows", mutate: func(p *domain.PlaceParams) {
			p.Lines[0].UnitPrice, p.Lines[0].Quantity = usd(math.MaxInt64/4), 3
			p.Lines[1].UnitPrice, p.Lines[1].Quantity = usd(math.MaxInt64/4), 3
		}, wantErr: domain.ErrOverflow},
		{name: "total overflows", mutate: func(p *domain.PlaceParams) {
			p.Lines = p.Lines[:1]
			p.Lines[0].UnitPrice, p.Lines[0].Quantity = usd(math.MaxInt64), 1
		}, wantErr: domain.ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := placeParams()
			tt.mutate(&p)
			evs, err := (&domain.Order{}).Place(p)
			if !errors.Is(err, domain.ErrInvalidOrder) {
				t.Fatalf("error %v, want ErrInvalidOrder", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want also %v", err, tt.wantErr)
			}
			if evs != nil {
				t.Fatalf("events %v with an error", text(evs))
			}
		})
	}
}

func TestPaymentAmountMustEqualTotal(t *testing.T) {
	t.Parallel()
	pending := fixtures()[1].load(t)
	shipped := fixtures()[4].load(t)
	tests := []struct {
		name    string
		run     func() ([]domain.Event, error)
		wantErr error
	}{
		{"authorize less", func() ([]domain.Event, error) { return pending.RecordPaymentAuthorized(payID, usd(total-1)) }, domain.ErrAmountMismatch},
		{"authorize more", func() ([]domain.Event, error) { return pending.RecordPaymentAuthorized(payID, usd(total+1)) }, domain.ErrAmountMismatch},
		{"authorize other currency", func() ([]domain.Event, error) {
			return pending.RecordPaymentAuthorized(payID, domain.Money{Units: total, Currency: "EUR"})
		}, domain.ErrCurrencyMismatch},
		{"authorize without id", func() ([]domain.Event, error) { return pending.RecordPaymentAuthorized("", usd(total)) }, domain.ErrInvalidOrder},
		{"capture less", func() ([]domain.Event, error) { return shipped.RecordPaymentCaptured(payID, usd(total-1)) }, domain.ErrAmountMismatch},
		{"capture other currency", func() ([]domain.Event, error) {
			return shipped.RecordPaymentCaptured(payID, domain.Money{Units: total, Currency: "EUR"})
		}, domain.ErrCurrencyMismatch},
		{"capture another payment", func() ([]domain.Event, error) { return shipped.RecordPaymentCaptured("pay-2", usd(total)) }, domain.ErrConflict},
		{"capture without id", func() ([]domain.Event, error) { return shipped.RecordPaymentCaptured("", usd(total)) }, domain.ErrInvalidOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := tt.run()
			if !errors.Is(err, tt.wantErr) || evs != nil {
				t.Fatalf("events %v error %v, want %v", text(evs), err, tt.wantErr)
			}
		})
	}
}

// Saga replies can be duplicated; a repeat is no event, a contradiction is ErrConflict.
func TestConflictingStepResults(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"completed", "cancelling-from-captured"} {
		var o *domain.Order
		for _, fx := range fixtures() {
			if fx.name == f {
				o = fx.load(t)
			}
		}
		tests := []struct {
			name string
			run  func() ([]domain.Event, error)
		}{
			{"other authorization", func() ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-2", usd(total)) }},
			{"authorization of another amount", func() ([]domain.Event, error) { return o.RecordPaymentAuthorized(payID, usd(total+1)) }},
			{"other reservation", func() ([]domain.Event, error) { return o.RecordInventoryReserved("res-2") }},
			{"other shipment", func() ([]domain.Event, error) { return o.RecordShipmentCreated("ship-2", trackID) }},
			{"other tracking id", func() ([]domain.Event, error) { return o.RecordShipmentCreated(shipID, "trk-2") }},
			{"other capture", func() ([]domain.Event, error) { return o.RecordPaymentCaptured("pay-2", usd(total)) }},
			{"capture of another amount", func() ([]domain.Event, error) { return o.RecordPaymentCaptured(payID, usd(1)) }},
		}
		for _, tt := range tests {
			t.Run(f+"/"+tt.name, func(t *testing.T) {
				evs, err := tt.run()
				if !errors.Is(err, domain.ErrConflict) || evs != nil {
					t.Fatalf("events %v error %v, want ErrConflict", text(evs), err)
				}
			})
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	t.Run("not the owner", func(t *testing.T) {
		o := fixtures()[2].load(t)
		evs, err := o.CancelByUser("user-2", "mine now")
		if !errors.Is(err, domain.ErrNotOwner) || evs != nil {
			t.Fatalf("events %v error %v, want ErrNotOwner", text(evs), err)
		}
		if o.OwnedBy("user-2") || !o.OwnedBy(userID) || (&domain.Order{}).OwnedBy("") {
			t.Fatal("OwnedBy disagrees with the placing user")
		}
	})
	t.Run("default reasons", func(t *testing.T) {
		o := fixtures()[1].load(t)
		user, _ := o.RequestCancel("", true)
		saga, _ := o.RequestCancel("", false)
		assertEvents(t, append(user, saga...), []domain.Event{
			cancelling(domain.ReasonUserCancelled, true),
			cancelling(domain.ReasonSagaFailed, false),
		})
	})
	t.Run("records what compensations need", func(t *testing.T) {
		o := fixtures()[8].load(t) // cancelling-from-captured
		if o.CancelledFrom() != domain.StatePaymentCaptured || o.CancelRequestedByUser() || o.CancelReason() != "parcel lost" {
			t.Fatalf("cancel from %s by user %t reason %q", o.CancelledFrom(), o.CancelRequestedByUser(), o.CancelReason())
		}
		if !o.PaymentCaptured() || o.PaymentID() != payID || o.ReservationID() != resID || o.ShipmentID() != shipID || o.TrackingID() != trackID {
			t.Fatalf("cancelling order lost step ids: %+v", o.Snapshot())
		}
		if o.AuthorizedAmount() != usd(total) || o.CapturedAmount() != usd(total) {
			t.Fatalf("authorized %s captured %s, want %d USD", o.AuthorizedAmount(), o.CapturedAmount(), total)
		}
	})
	t.Run("first reason stands", func(t *testing.T) {
		o := fixtures()[7].load(t) // cancelling-from-pending
		evs, err := o.RequestCancel("another reason", false)
		if err != nil || evs != nil {
			t.Fatalf("events %v error %v, want none", text(evs), err)
		}
		evs, _ = o.ConfirmCancelled()
		if err := o.Apply(evs[0]); err != nil {
			t.Fatal(err)
		}
		if o.State() != domain.StateCancelled || o.CancelReason() != "changed my mind" || !o.CancelRequestedByUser() {
			t.Fatalf("state %s reason %q", o.State(), o.CancelReason())
		}
	})
}

func TestStateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s                     domain.State
		name                  string
		final, byUser, bySaga bool
	}{
		{domain.StateNew, "NEW", false, false, false},
		{domain.StatePending, "PENDING", false, true, true},
		{domain.StatePaymentAuthorized, "PAYMENT_AUTHORIZED", false, true, true},
		{domain.StateInventoryReserved, "INVENTORY_RESERVED", false, true, true},
		{domain.StateShipmentCreated, "SHIPMENT_CREATED", false, false, true},
		{domain.StatePaymentCaptured, "PAYMENT_CAPTURED", false, false, true},
		{domain.StateCompleted, "COMPLETED", true, false, false},
		{domain.StateCancelling, "CANCELLING", false, false, false},
		{domain.StateCancelled, "CANCELLED", true, false, false},
	}
	for _, tt := range tests {
		if tt.s.String() != tt.name || tt.s.Final() != tt.final || tt.s.UserCancellable() != tt.byUser ||
			tt.s.SagaCancellable() != tt.bySaga || !tt.s.Valid() {
			t.Errorf("%s: got %s final %t user %t saga %t", tt.name, tt.s, tt.s.Final(), tt.s.UserCancellable(), tt.s.SagaCancellable())
		}
	}
	if s := domain.State(42); s.Valid() || s.String() != "State(42)" {
		t.Errorf("State(42) valid %t string %s", s.Valid(), s)
	}
}
