package domain

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// Line is a priced order line, frozen when the order was placed.
type Line struct {
	ProductID string `json:"product_id"`
	Name      string `json:"name"`
	Quantity  int32  `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
}

// Total returns UnitPrice * Quantity; it returns ErrOverflow when that does not fit.
func (l Line) Total() (Money, error) { return l.UnitPrice.Mul(int64(l.Quantity)) }

// Address is where the order ships.
type Address struct {
	Name        string `json:"name"`
	Street      string `json:"street"`
	City        string `json:"city"`
	PostalCode  string `json:"postal_code"`
	CountryCode string `json:"country_code"`
}

// Order is the event-sourced order aggregate. Its zero value is an order not yet
// placed (StateNew), on which only Place succeeds. Commands (Place, Record...,
// Complete, RequestCancel, ConfirmCancelled) decide and return the events to append,
// or an error and no events; they never change the Order. Only Apply does, one event
// at a time. An Order is not safe for concurrent use.
//
// Repeats: saga replies and client retries arrive more than once, so a command that
// repeats what the order already recorded returns no events and no error, whatever
// the state is now (a duplicate payment authorization after the order was cancelled
// is still a duplicate). A command that contradicts what was recorded (another
// payment id, another reservation) returns ErrConflict. A command the state does not
// allow and that repeats nothing returns a *TransitionError. Arguments are checked
// before state, so a malformed command is ErrInvalidOrder in every state.
type Order struct {
	id      string
	userID  string
	state   State
	version int64

	lines          []Line
	subtotal       Money
	shippingCost   Money
	total          Money
	address        Address
	paymentToken   string
	idempotencyKey string

	paymentID         string
	authorized        Money
	reservationID     string
	shipmentID        string
	trackingID        string
	capturedPaymentID string
	captured          Money

	cancelReason  string
	cancelByUser  bool
	cancelledFrom State
}

// Rehydrate rebuilds an order from its stored history by applying every event in
// order. It is not a constructor: it trusts that the events were once accepted,
// and checks only that they still fit together. It returns ErrInvalidEvent for an
// empty history or a malformed event and a *TransitionError (ErrIllegalTransition)
// for an event out of order, each wrapped with the event's 1-based position.
func Rehydrate(events []Event) (*Order, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("rehydrate order: empty history: %w", ErrInvalidEvent)
	}
	o := &Order{}
	for i, e := range events {
		if err := o.Apply(e); err != nil {
			return nil, fmt.Errorf("rehydrate order: event %d: %w", i+1, err)
		}
	}
	return o, nil
}

// Apply folds one event into the order and increments its version; it is the only
// place an Order changes. A rejected event leaves the order untouched. Apply checks
// the shape of the machine and the data each event must carry, not the rules of the
// commands (who may cancel, which amount): those held when the event was decided,
// and stored history must keep loading if the rules change later. It returns
// ErrInvalidEvent for a nil or unknown event, an event of another order or one
// missing required data, and a *TransitionError when the current state does not
// admit the event.
func (o *Order) Apply(e Event) error {
	if e == nil || !e.ProtoReflect().IsValid() {
		return fmt.Errorf("apply nil event: %w", ErrInvalidEvent)
	}
	name := string(proto.MessageName(e).Name())
	if o.state != StateNew && e.GetOrderId() != o.id {
		return fmt.Errorf("apply %s of order %q to order %q: %w", name, e.GetOrderId(), o.id, ErrInvalidEvent)
	}
	from := o.state
	transition := func(want State) error {
		if from != want {
			return illegal(from, "apply "+name)
		}
		return nil
	}

	switch ev := e.(type) {
	case *orderv1.OrderPlaced:
		if err := transition(StateNew); err != nil {
			return err
		}
		placed, err := placedFromEvent(ev)
		if err != nil {
			return fmt.Errorf("apply %s: %w", name, err)
		}
		*o = placed

	case *orderv1.OrderPaymentAuthorized:
		if err := transition(StatePending); err != nil {
			return err
		}
		amount, err := moneyFromProto("amount", ev.GetAmount())
		if err != nil {
			return fmt.Errorf("apply %s: %w", name, err)
		}
		if ev.GetPaymentId() == "" {
			return fmt.Errorf("apply %s: payment id is missing: %w", name, ErrInvalidEvent)
		}
		o.paymentID, o.authorized = ev.GetPaymentId(), amount
		o.state = StatePaymentAuthorized

	case *orderv1.OrderInventoryReserved:
		if err := transition(StatePaymentAuthorized); err != nil {
			return err
		}
		if ev.GetReservationId() == "" {
			return fmt.Errorf("apply %s: reservation id is missing: %w", name, ErrInvalidEvent)
		}
		o.reservationID = ev.GetReservationId()
		o.state = StateInventoryReserved

	case *orderv1.OrderShipmentCreated:
		if err := transition(StateInventoryReserved); err != nil {
			return err
		}
		if ev.GetShipmentId() == "" {
			return fmt.Errorf("apply %s: shipment id is missing: %w", name, ErrInvalidEvent)
		}
		o.shipmentID, o.trackingID = ev.GetShipmentId(), ev.GetTrackingId()
		o.state = StateShipmentCreated

	case *orderv1.OrderPaymentCaptured:
		if err := transition(StateShipmentCreated); err != nil {
			return err
		}
		amount, err := moneyFromProto("amount", ev.GetAmount())
		if err != nil {
			return fmt.Errorf("apply %s: %w", name, err)
		}
		if ev.GetPaymentId() == "" {
			return fmt.Errorf("apply %s: payment id is missing: %w", name, ErrInvalidEvent)
		}
		o.capturedPaymentID, o.captured = ev.GetPaymentId(), amount
		o.state = StatePaymentCaptured

	case *orderv1.OrderCompleted:
		if err := transition(StatePaymentCaptured); err != nil {
			return err
		}
		o.state = StateCompleted

	case *orderv1.OrderCancelling:
		if !from.SagaCancellable() {
			return illegal(from, "apply "+name)
		}
		o.cancelReason, o.cancelByUser, o.cancelledFrom = ev.GetReason(), ev.GetRequestedByUser(), from
		o.state = StateCancelling

	case *orderv1.OrderCancelled:
		if err := transition(StateCancelling); err != nil {
			return err
		}
		// The reason recorded by OrderCancelling stands; OrderCancelled repeats it
		// only for readers of that event alone.
		o.state = StateCancelled

	default:
		return fmt.Errorf("apply %s: unknown event type: %w", proto.MessageName(e), ErrInvalidEvent)
	}
	o.version++
	return nil
}

// placedFromEvent builds the whole state of a freshly placed order, so a malformed
// OrderPlaced is rejected before anything is assigned.
func placedFromEvent(ev *orderv1.OrderPlaced) (Order, error) {
	if ev.GetOrderId() == "" || ev.GetUserId() == "" {
		return Order{}, fmt.Errorf("order or user id is missing: %w", ErrInvalidEvent)
	}
	if len(ev.GetLines()) == 0 {
		return Order{}, fmt.Errorf("no lines: %w", ErrInvalidEvent)
	}
	lines := make([]Line, 0, len(ev.GetLines()))
	for i, l := range ev.GetLines() {
		price, err := moneyFromProto(fmt.Sprintf("line %d unit price", i+1), l.GetUnitPrice())
		if err != nil {
			return Order{}, err
		}
		lines = append(lines, Line{ProductID: l.GetProductId(), Name: l.GetName(), Quantity: l.GetQuantity(), UnitPrice: price})
	}
	subtotal, err := moneyFromProto("subtotal", ev.GetSubtotal())
	if err != nil {
		return Order{}, err
	}
	shipping, err := moneyFromProto("shipping cost", ev.GetShippingCost())
	if err != nil {
		return Order{}, err
	}
	total, err := moneyFromProto("total", ev.GetTotal())
	if err != nil {
		return Order{}, err
	}
	return Order{
		id:             ev.GetOrderId(),
		userID:         ev.GetUserId(),
		state:          StatePending,
		lines:          lines,
		subtotal:       subtotal,
		shippingCost:   shipping,
		total:          total,
		address:        addressFromProto(ev.GetShippingAddress()),
		paymentToken:   ev.GetPaymentToken(),
		idempotencyKey: ev.GetIdempotencyKey(),
	}, nil
}

// Pass counts an event of the order's stream that is not one of the order's own: a
// step of its saga that changes nothing the order shows. Version then stays the
// stream's version, which appends expect.
func (o *Order) Pass() { o.version++ }

// Clone returns an independent copy of o, so that a cached order can be decided on
// without the cache seeing a decision before it is stored.
func (o *Order) Clone() *Order {
	c := *o
	c.lines = slices.Clone(o.lines)
	return &c
}

// ID returns the order id; empty before the order is placed.
func (o *Order) ID() string { return o.id }

// UserID returns the id of the user who placed the order.
func (o *Order) UserID() string { return o.userID }

// OwnedBy reports whether userID placed this order.
func (o *Order) OwnedBy(userID string) bool { return o.state != StateNew && o.userID == userID }

// State returns where the order is in its state machine.
func (o *Order) State() State { return o.state }

// Version returns the number of events applied: the expected version of the
// order's stream for the next append.
func (o *Order) Version() int64 { return o.version }

// Lines returns a copy of the priced lines.
func (o *Order) Lines() []Line { return slices.Clone(o.lines) }

// Subtotal returns the sum of the line totals.
func (o *Order) Subtotal() Money { return o.subtotal }

// ShippingCost returns the shipping price charged with the order.
func (o *Order) ShippingCost() Money { return o.shippingCost }

// Total returns Subtotal + ShippingCost: the amount to authorize and capture.
func (o *Order) Total() Money { return o.total }

// Address returns the shipping address.
func (o *Order) Address() Address { return o.address }

// PaymentToken returns the card token the payment step charges.
func (o *Order) PaymentToken() string { return o.paymentToken }

// IdempotencyKey returns the client key the order was placed with.
func (o *Order) IdempotencyKey() string { return o.idempotencyKey }

// PaymentID returns the authorized payment's id; empty until authorized.
func (o *Order) PaymentID() string { return o.paymentID }

// AuthorizedAmount returns the authorized amount; zero until authorized.
func (o *Order) AuthorizedAmount() Money { return o.authorized }

// ReservationID returns the inventory reservation's id; empty until reserved.
func (o *Order) ReservationID() string { return o.reservationID }

// ShipmentID returns the shipment's id; empty until the shipment exists.
func (o *Order) ShipmentID() string { return o.shipmentID }

// TrackingID returns the carrier's tracking id; empty until the shipment exists.
func (o *Order) TrackingID() string { return o.trackingID }

// CapturedAmount returns the captured amount; zero until captured.
func (o *Order) CapturedAmount() Money { return o.captured }

// PaymentCaptured reports whether the payment was captured, so a cancellation
// knows it must refund rather than void.
func (o *Order) PaymentCaptured() bool { return o.capturedPaymentID != "" }

// CancelReason returns why the order is cancelling or cancelled; empty otherwise.
func (o *Order) CancelReason() string { return o.cancelReason }

// CancelRequestedByUser reports whether the user, not a failed step, asked to cancel.
func (o *Order) CancelRequestedByUser() bool { return o.cancelByUser }

// CancelledFrom returns the state the order was in when cancelling began
// (StateNew if it never began): it tells which compensations must run.
func (o *Order) CancelledFrom() State { return o.cancelledFrom }
