package domain_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/eventshop/eventshop/services/order/domain"
)

// edges is the state machine as documented; anything else is a bug.
var edges = map[domain.State][]domain.State{
	domain.StateNew:               {domain.StatePending},
	domain.StatePending:           {domain.StatePaymentAuthorized, domain.StateCancelling},
	domain.StatePaymentAuthorized: {domain.StateInventoryReserved, domain.StateCancelling},
	domain.StateInventoryReserved: {domain.StateShipmentCreated, domain.StateCancelling},
	domain.StateShipmentCreated:   {domain.StatePaymentCaptured, domain.StateCancelling},
	domain.StatePaymentCaptured:   {domain.StateCompleted, domain.StateCancelling},
	domain.StateCancelling:        {domain.StateCancelled},
}

// randomCommand runs one command with arguments that are mostly right and sometimes
// wrong (other ids, other amounts, other users, empty values, bad orders).
func randomCommand(r *rand.Rand, o *domain.Order) (string, []domain.Event, error) {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	amount := func() domain.Money {
		t := o.Total()
		if t.Currency == "" {
			t = usd(total)
		}
		switch r.IntN(6) {
		case 0:
			t.Units++
		case 1:
			t.Currency = "EUR"
		}
		return t
	}
	switch r.IntN(10) {
	case 0:
		p := placeParams()
		switch r.IntN(5) {
		case 0:
			p.IdempotencyKey = "key-87654321"
		case 1:
			p.Lines = nil
		case 2:
			p.ShippingCost.Currency = "EUR"
		case 3:
			p.Lines[0].Quantity = int32(r.IntN(5)) - 2
		}
		evs, err := o.Place(p)
		return "Place", evs, err
	case 1:
		evs, err := o.RecordPaymentAuthorized(pick(payID, payID, "pay-2", ""), amount())
		return "RecordPaymentAuthorized", evs, err
	case 2:
		evs, err := o.RecordInventoryReserved(pick(resID, resID, "res-2", ""))
		return "RecordInventoryReserved", evs, err
	case 3:
		evs, err := o.RecordShipmentCreated(pick(shipID, shipID, "ship-2", ""), pick(trackID, trackID, "", "trk-2"))
		return "RecordShipmentCreated", evs, err
	case 4:
		evs, err := o.RecordPaymentCaptured(pick(payID, payID, "pay-2", ""), amount())
		return "RecordPaymentCaptured", evs, err
	case 5:
		evs, err := o.Complete()
		return "Complete", evs, err
	case 6:
		evs, err := o.RequestCancel(pick("", "out of stock", "declined"), r.IntN(2) == 0)
		return "RequestCancel", evs, err
	case 7:
		evs, err := o.CancelByUser(pick(userID, userID, "user-2"), pick("", "too slow"))
		return "CancelByUser", evs, err
	default:
		evs, err := o.ConfirmCancelled()
		return "ConfirmCancelled", evs, err
	}
}

var knownErrors = []error{
	domain.ErrIllegalTransition, domain.ErrInvalidOrder, domain.ErrAmountMismatch,
	domain.ErrCurrencyMismatch, domain.ErrConflict, domain.ErrNotOwner,
}

func TestRandomCommandSequencesStayInTheMachine(t *testing.T) {
	t.Parallel()
	fxs := fixtures()
	visited := map[[2]domain.State]bool{}
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 0x0bde))
		f := fxs[r.IntN(len(fxs))]
		o := f.load(t)
		history := slices.Clone(f.history)
		var trail []string

		for range 30 {
			before := o.Snapshot()
			name, evs, err := randomCommand(r, o)
			trail = append(trail, name)
			if !reflect.DeepEqual(o.Snapshot(), before) {
				t.Fatalf("seed %d %v: command changed the order", seed, trail)
			}
			if err != nil {
				if !slices.ContainsFunc(knownErrors, func(k error) bool { return errors.Is(err, k) }) || evs != nil {
					t.Fatalf("seed %d %v: events %v error %v", seed, trail, text(evs), err)
				}
				continue
			}
			for _, e := range evs {
				from := o.State()
				if err := o.Apply(e); err != nil {
					t.Fatalf("seed %d %v: Apply rejected %s: %v", seed, trail, domain.EventType(e), err)
				}
				if !slices.Contains(edges[from], o.State()) {
					t.Fatalf("seed %d %v: %s -> %s is not in the machine", seed, trail, from, o.State())
				}
				visited[[2]domain.State{from, o.State()}] = true
			}
			history = append(history, evs...)
			checkInvariants(t, o, int64(len(history)))
		}

		if len(history) > 0 {
			replayed, err := domain.Rehydrate(history)
			if err != nil {
				t.Fatalf("seed %d: rehydrate: %v", seed, err)
			}
			if !reflect.DeepEqual(replayed.Snapshot(), o.Snapshot()) {
				t.Fatalf("seed %d: replay differs:\n got %+v\nwant %+v", seed, replayed.Snapshot(), o.Snapshot())
			}
		}
	}
	// The walk is only evidence if it took every edge.
	for from, tos := range edges {
		for _, to := range tos {
			if !visited[[2]domain.State{from, to}] {
				t.Errorf("no random sequence took %s -> %s", from, to)
			}
		}
	}
}

// checkInvariants holds in every state, whatever path led there.
func checkInvariants(t *testing.T, o *domain.Order, events int64) {
	t.Helper()
	s := o.State()
	fail := func(msg string) { t.Helper(); t.Fatalf("%s in state %s: %+v", msg, s, o.Snapshot()) }
	if !s.Valid() {
		fail("unknown state")
	}
	if o.Version() != events {
		fail("version is not the number of events")
	}
	if s == domain.StateNew {
		return
	}
	sum := domain.Money{Currency: o.Subtotal().Currency}
	for _, l := range o.Lines() {
		lt, err := l.Total()
		if err != nil {
			fail(err.Error())
		}
		if sum, err = sum.Add(lt); err != nil {
			fail(err.Error())
		}
	}
	if want, err := sum.Add(o.ShippingCost()); err != nil || sum != o.Subtotal() || want != o.Total() {
		fail("totals do not add up")
	}
	reached := s
	if s == domain.StateCancelling || s == domain.StateCancelled {
		reached = o.CancelledFrom()
		if o.CancelReason() == "" || !reached.SagaCancellable() {
			fail("cancellation without reason or origin")
		}
		if o.CancelRequestedByUser() && !reached.UserCancellable() {
			fail("user cancelled after shipment")
		}
	}
	if reached >= domain.StatePaymentAuthorized && (o.PaymentID() == "" || o.AuthorizedAmount() != o.Total()) {
		fail("authorized without the total")
	}
	if reached >= domain.StateInventoryReserved && o.ReservationID() == "" {
		fail("reserved without reservation")
	}
	if reached >= domain.StateShipmentCreated && o.ShipmentID() == "" {
		fail("shipped without shipment")
	}
	if reached >= domain.StatePaymentCaptured && (!o.PaymentCaptured() || o.CapturedAmount() != o.Total()) {
		fail("captured without the total")
	}
	if o.PaymentCaptured() && reached < domain.StatePaymentCaptured {
		fail("captured before shipment")
	}
}
