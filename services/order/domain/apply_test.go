package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/domain"
)

func TestRehydrateEqualsApplyingOneByOne(t *testing.T) {
	t.Parallel()
	for _, f := range fixtures()[1:] {
		t.Run(f.name, func(t *testing.T) {
			var o domain.Order
			for i, e := range f.history {
				if err := o.Apply(e); err != nil {
					t.Fatalf("event %d: %v", i+1, err)
				}
				if o.Version() != int64(i+1) {
					t.Fatalf("version %d after %d events", o.Version(), i+1)
				}
			}
			r, err := domain.Rehydrate(f.history)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Snapshot(), o.Snapshot()) {
				t.Fatalf("rehydrated %+v\none by one %+v", r.Snapshot(), o.Snapshot())
			}
			if r.State() != f.state || r.Version() != int64(len(f.history)) {
				t.Fatalf("state %s version %d, want %s %d", r.State(), r.Version(), f.state, len(f.history))
			}
		})
	}
}

// Placing then running every command of the happy path, each through its events,
// ends where the stored history does.
func TestCommandsReproduceHistory(t *testing.T) {
	t.Parallel()
	var o domain.Order
	var history []domain.Event
	steps := []func() ([]domain.Event, error){
		func() ([]domain.Event, error) { return o.Place(placeParams()) },
		func() ([]domain.Event, error) { return o.RecordPaymentAuthorized(payID, o.Total()) },
		func() ([]domain.Event, error) { return o.RecordInventoryReserved(resID) },
		func() ([]domain.Event, error) { return o.RecordShipmentCreated(shipID, trackID) },
		func() ([]domain.Event, error) { return o.RecordPaymentCaptured(payID, o.Total()) },
		func() ([]domain.Event, error) { return o.Complete() },
	}
	for i, step := range steps {
		evs, err := step()
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		for _, e := range evs {
			if err := o.Apply(e); err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
		}
		history = append(history, evs...)
	}
	assertEvents(t, history, happyPath(6))
}

func TestApplyRejects(t *testing.T) {
	t.Parallel()
	noAmount := authorized()
	noAmount.Amount = nil
	noTotal := placed(idemKey)
	noTotal.Total = nil
	noLines := placed(idemKey)
	noLines.Lines = nil
	noPrice := placed(idemKey)
	noPrice.Lines[1].UnitPrice = nil
	otherOrder := authorized()
	otherOrder.OrderId = "order-2"
	noPayment := authorized()
	noPayment.PaymentId = ""
	noReservation := reserved()
	noReservation.ReservationId = ""
	noShipment := shipped()
	noShipment.ShipmentId = ""

	tests := []struct {
		name    string
		from    int // index into fixtures()
		event   domain.Event
		wantErr error
	}{
		{"nil", 1, nil, domain.ErrInvalidEvent},
		{"typed nil", 1, (*orderv1.OrderCompleted)(nil), domain.ErrInvalidEvent},
		{"not an order event", 1, &orderv1.GetOrderRequest{OrderId: orderID}, domain.ErrInvalidEvent},
		{"another order", 1, otherOrder, domain.ErrInvalidEvent},
		{"amount missing", 1, noAmount, domain.ErrInvalidEvent},
		{"payment id missing", 1, noPayment, domain.ErrInvalidEvent},
		{"reservation id missing", 2, noReservation, domain.ErrInvalidEvent},
		{"shipment id missing", 3, noShipment, domain.ErrInvalidEvent},
		{"total missing", 0, noTotal, domain.ErrInvalidEvent},
		{"no lines", 0, noLines, domain.ErrInvalidEvent},
		{"line without price", 0, noPrice, domain.ErrInvalidEvent},
		{"placed twice", 1, placed(idemKey), domain.ErrIllegalTransition},
		{"skips a step", 1, reserved(), domain.ErrIllegalTransition},
		{"completes unpaid", 4, completed(), domain.ErrIllegalTransition},
		{"cancelled without cancelling", 3, cancelled("x"), domain.ErrIllegalTransition},
		{"cancels a completed order", 6, cancelling("x", false), domain.ErrIllegalTransition},
		{"cancels twice", 7, cancelling("x", false), domain.ErrIllegalTransition},
		{"first event is not OrderPlaced", 0, authorized(), domain.ErrIllegalTransition},
	}
	fxs := fixtures()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fxs[tt.from].load(t)
			before := o.Snapshot()
			err := o.Apply(tt.event)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(o.Snapshot(), before) {
				t.Fatalf("rejected event changed the order:\n got %+v\nwant %+v", o.Snapshot(), before)
			}
		})
	}
}

func TestApplyTransitionErrorNamesTheEvent(t *testing.T) {
	t.Parallel()
	o := fixtures()[1].load(t)
	err := o.Apply(completed())
	var te *domain.TransitionError
	if !errors.As(err, &te) || *te != (domain.TransitionError{From: domain.StatePending, Command: "apply OrderCompleted"}) {
		t.Fatalf("error %v", err)
	}
}

func TestRehydrateRejects(t *testing.T) {
	t.Parallel()
	if _, err := domain.Rehydrate(nil); !errors.Is(err, domain.ErrInvalidEvent) {
		t.Fatalf("empty history: %v, want ErrInvalidEvent", err)
	}
	o, err := domain.Rehydrate([]domain.Event{placed(idemKey), authorized(), shipped()})
	if !errors.Is(err, domain.ErrIllegalTransition) || o != nil {
		t.Fatalf("gap in history: order %v error %v, want ErrIllegalTransition", o, err)
	}
	if want := "rehydrate order: event 3: order: apply OrderShipmentCreated not allowed in state PAYMENT_AUTHORIZED"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			o := f.load(t)
			b, err := json.Marshal(o.Snapshot())
			if err != nil {
				t.Fatal(err)
			}
			var s domain.Snapshot
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			r, err := domain.FromSnapshot(s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Snapshot(), o.Snapshot()) {
				t.Fatalf("restored %+v\nwant     %+v", r.Snapshot(), o.Snapshot())
			}
			// A restored order decides like the rehydrated one.
			for _, c := range commands() {
				want, wantErr := c.run(o)
				got, err := c.run(r)
				if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
					t.Fatalf("%s: error %v, want %v", c.name, err, wantErr)
				}
				assertEvents(t, got, want)
			}
		})
	}
}

func TestSnapshotSharesNothing(t *testing.T) {
	t.Parallel()
	o := fixtures()[1].load(t)
	s := o.Snapshot()
	s.Lines[0].Quantity = 1_000
	if o.Lines()[0].Quantity == 1_000 {
		t.Fatal("Snapshot shares lines with the order")
	}
	r, _ := domain.FromSnapshot(s)
	s.Lines[0].Quantity = 2_000
	if r.Lines()[0].Quantity == 2_000 {
		t.Fatal("FromSnapshot shares lines with the snapshot")
	}
}

func TestFromSnapshotRejects(t *testing.T) {
	t.Parallel()
	valid := fixtures()[9].load(t).Snapshot() // cancelled-from-reserved
	tests := []struct {
		name   string
		mutate func(s *domain.Snapshot)
	}{
		{"unknown state", func(s *domain.Snapshot) { s.State = 99 }},
		{"version too small", func(s *domain.Snapshot) { s.Version = 2 }},
		{"version too small for where it was cancelled", func(s *domain.Snapshot) { s.Version = 4 }},
		{"no id", func(s *domain.Snapshot) { s.ID = "" }},
		{"no lines", func(s *domain.Snapshot) { s.Lines = nil }},
		{"cancelled from nowhere", func(s *domain.Snapshot) { s.CancelledFrom = domain.StateNew }},
		{"lost its reservation", func(s *domain.Snapshot) { s.ReservationID = "" }},
		{"new with data", func(s *domain.Snapshot) { s.State, s.Version = domain.StateNew, 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			s.Lines = append([]domain.Line(nil), valid.Lines...)
			tt.mutate(&s)
			if _, err := domain.FromSnapshot(s); !errors.Is(err, domain.ErrInvalidSnapshot) {
				t.Fatalf("error %v, want ErrInvalidSnapshot", err)
			}
		})
	}
}

func TestEventTypesRoundTrip(t *testing.T) {
	t.Parallel()
	all := append(happyPath(6), cancelling("x", true), cancelled("x"))
	for _, e := range all {
		name := domain.EventType(e)
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := domain.NewEvent(name)
		if err != nil {
			t.Fatalf("NewEvent(%q): %v", name, err)
		}
		if err := proto.Unmarshal(b, fresh); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(fresh, e) {
			t.Fatalf("%s did not survive the round trip", name)
		}
	}
	if got := domain.EventType(placed("")); got != "eventshop.order.v1.OrderPlaced" {
		t.Fatalf("EventType = %q", got)
	}
	if _, err := domain.NewEvent("eventshop.order.v1.GetOrderRequest"); !errors.Is(err, domain.ErrInvalidEvent) {
		t.Fatalf("NewEvent of a request: %v, want ErrInvalidEvent", err)
	}
}
