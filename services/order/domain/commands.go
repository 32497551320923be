package domain

import (
	"fmt"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// Command names carried by *TransitionError.
const (
	CmdPlace                   = "Place"
	CmdRecordPaymentAuthorized = "RecordPaymentAuthorized"
	CmdRecordInventoryReserved = "RecordInventoryReserved"
	CmdRecordShipmentCreated   = "RecordShipmentCreated"
	CmdRecordPaymentCaptured   = "RecordPaymentCaptured"
	CmdComplete                = "Complete"
	CmdRequestCancel           = "RequestCancel"
	CmdCancelByUser            = "CancelByUser"
	CmdConfirmCancelled        = "ConfirmCancelled"
)

// Default cancel reasons, used when none is given.
const (
	ReasonUserCancelled = "cancelled by user"
	ReasonSagaFailed    = "order could not be fulfilled"
)

// PlaceParams are the inputs of Place. Prices come from the catalog, read by the
// caller; the subtotal and total are computed by Place and cannot be passed in.
type PlaceParams struct {
	OrderID        string
	UserID         string
	Lines          []Line
	ShippingCost   Money
	Address        Address
	PaymentToken   string
	IdempotencyKey string // optional; enables the duplicate check below
}

// Place starts the order: NEW -> PENDING with OrderPlaced. Subtotal is the sum of
// UnitPrice*Quantity over the lines and Total is Subtotal + ShippingCost.
//
// On an order already placed, Place with the same OrderID, UserID and non-empty
// IdempotencyKey is a retry and returns no events (the first order stands); any
// other Place returns a *TransitionError. It returns ErrInvalidOrder when an id,
// the address, or the payment token is missing, there are no lines, a product
// appears twice, a quantity is not positive, or an amount is negative or not in an
// ISO-4217 currency; ErrCurrencyMismatch (also matching ErrInvalidOrder) when the
// lines and shipping do not share one currency; ErrOverflow (also matching
// ErrInvalidOrder) when a total does not fit.
func (o *Order) Place(p PlaceParams) ([]Event, error) {
	if o.state != StateNew {
		if p.IdempotencyKey != "" && p.IdempotencyKey == o.idempotencyKey && p.UserID == o.userID && p.OrderID == o.id {
			return nil, nil
		}
		return nil, illegal(o.state, CmdPlace)
	}
	subtotal, total, err := p.price()
	if err != nil {
		return nil, fmt.Errorf("place order %q: %w", p.OrderID, err)
	}
	ev := &orderv1.OrderPlaced{
		OrderId:         p.OrderID,
		UserId:          p.UserID,
		Lines:           make([]*orderv1.OrderLine, 0, len(p.Lines)),
		Subtotal:        subtotal.Proto(),
		ShippingCost:    p.ShippingCost.Proto(),
		Total:           total.Proto(),
		ShippingAddress: addressToProto(p.Address),
		PaymentToken:    p.PaymentToken,
		IdempotencyKey:  p.IdempotencyKey,
	}
	for _, l := range p.Lines {
		lt, _ := l.Total() // cannot fail: price() computed it already
		ev.Lines = append(ev.Lines, &orderv1.OrderLine{
			ProductId: l.ProductID,
			Name:      l.Name,
			Quantity:  l.Quantity,
			UnitPrice: l.UnitPrice.Proto(),
			LineTotal: lt.Proto(),
		})
	}
	return []Event{ev}, nil
}

// price validates p and returns its subtotal and total.
func (p PlaceParams) price() (subtotal, total Money, err error) {
	invalid := func(format string, args ...any) (Money, Money, error) {
		return Money{}, Money{}, fmt.Errorf(format+": %w", append(args, ErrInvalidOrder)...)
	}
	switch {
	case p.OrderID == "":
		return invalid("order id is empty")
	case p.UserID == "":
		return invalid("user id is empty")
	case p.PaymentToken == "":
		return invalid("payment token is empty")
	case len(p.Lines) == 0:
		return invalid("order has no lines")
	}
	a := p.Address
	if a.Name == "" || a.Street == "" || a.City == "" || a.PostalCode == "" || a.CountryCode == "" {
		return invalid("shipping address is incomplete")
	}

	currency := p.Lines[0].UnitPrice.Currency
	subtotal = Money{Currency: currency}
	seen := make(map[string]bool, len(p.Lines))
	for i, l := range p.Lines {
		switch {
		case l.ProductID == "":
			return invalid("line %d: product id is empty", i+1)
		case seen[l.ProductID]:
			return invalid("line %d: product %q appears twice", i+1, l.ProductID)
		case l.Quantity <= 0:
			return invalid("line %d: quantity %d is not positive", i+1, l.Quantity)
		}
		seen[l.ProductID] = true
		if err := ValidateMoney(l.UnitPrice); err != nil {
			return Money{}, Money{}, fmt.Errorf("line %d unit price: %w", i+1, err)
		}
		lt, err := l.Total()
		if err == nil {
			subtotal, err = subtotal.Add(lt)
		}
		if err != nil {
			return Money{}, Money{}, fmt.Errorf("%w: line %d: %w", ErrInvalidOrder, i+1, err)
		}
	}
	if err := ValidateMoney(p.ShippingCost); err != nil {
		return Money{}, Money{}, fmt.Errorf("shipping cost: %w", err)
	}
	total, err = subtotal.Add(p.ShippingCost)
	if err != nil {
		return Money{}, Money{}, fmt.Errorf("%w: shipping cost: %w", ErrInvalidOrder, err)
	}
	return subtotal, total, nil
}

// RecordPaymentAuthorized records the payment step's success: PENDING ->
// PAYMENT_AUTHORIZED with OrderPaymentAuthorized. The same payment id and amount
// again returns no events. It returns ErrInvalidOrder for an empty payment id,
// ErrCurrencyMismatch or ErrAmountMismatch when amount is not the order total,
// ErrConflict when another authorization was recorded, and a *TransitionError in
// any state but PENDING.
func (o *Order) RecordPaymentAuthorized(paymentID string, amount Money) ([]Event, error) {
	if paymentID == "" {
		return nil, fmt.Errorf("record payment authorization: payment id is empty: %w", ErrInvalidOrder)
	}
	if o.paymentID != "" {
		if o.paymentID == paymentID && o.authorized == amount {
			return nil, nil
		}
		return nil, fmt.Errorf("record payment authorization %q of %s: already authorized %q of %s: %w",
			paymentID, amount, o.paymentID, o.authorized, ErrConflict)
	}
	if o.state != StatePending {
		return nil, illegal(o.state, CmdRecordPaymentAuthorized)
	}
	if err := o.checkTotal(amount); err != nil {
		return nil, fmt.Errorf("record payment authorization %q: %w", paymentID, err)
	}
	return []Event{&orderv1.OrderPaymentAuthorized{OrderId: o.id, PaymentId: paymentID, Amount: amount.Proto()}}, nil
}

// RecordInventoryReserved records the inventory step's success: PAYMENT_AUTHORIZED
// -> INVENTORY_RESERVED with OrderInventoryReserved. The same reservation id again
// returns no events. It returns ErrInvalidOrder for an empty id, ErrConflict when
// another reservation was recorded, and a *TransitionError in any state but
// PAYMENT_AUTHORIZED.
func (o *Order) RecordInventoryReserved(reservationID string) ([]Event, error) {
	if reservationID == "" {
		return nil, fmt.Errorf("record inventory reservation: reservation id is empty: %w", ErrInvalidOrder)
	}
	if o.reservationID != "" {
		if o.reservationID == reservationID {
			return nil, nil
		}
		return nil, fmt.Errorf("record inventory reservation %q: already reserved %q: %w", reservationID, o.reservationID, ErrConflict)
	}
	if o.state != StatePaymentAuthorized {
		return nil, illegal(o.state, CmdRecordInventoryReserved)
	}
	return []Event{&orderv1.OrderInventoryReserved{OrderId: o.id, ReservationId: reservationID}}, nil
}

// RecordShipmentCreated records the shipping step's success: INVENTORY_RESERVED ->
// SHIPMENT_CREATED with OrderShipmentCreated. The same shipment and tracking ids
// again return no events. It returns ErrInvalidOrder for an empty shipment id,
// ErrConflict when another shipment was recorded, and a *TransitionError in any
// state but INVENTORY_RESERVED.
func (o *Order) RecordShipmentCreated(shipmentID, trackingID string) ([]Event, error) {
	if shipmentID == "" {
		return nil, fmt.Errorf("record shipment: shipment id is empty: %w", ErrInvalidOrder)
	}
	if o.shipmentID != "" {
		if o.shipmentID == shipmentID && o.trackingID == trackingID {
			return nil, nil
		}
		return nil, fmt.Errorf("record shipment %q (%q): already recorded %q (%q): %w",
			shipmentID, trackingID, o.shipmentID, o.trackingID, ErrConflict)
	}
	if o.state != StateInventoryReserved {
		return nil, illegal(o.state, CmdRecordShipmentCreated)
	}
	return []Event{&orderv1.OrderShipmentCreated{OrderId: o.id, ShipmentId: shipmentID, TrackingId: trackingID}}, nil
}

// RecordPaymentCaptured records the capture step's success: SHIPMENT_CREATED ->
// PAYMENT_CAPTURED with OrderPaymentCaptured. The same capture again returns no
// events. It returns ErrInvalidOrder for an empty payment id, ErrConflict when the
// payment is not the authorized one or another capture was recorded,
// ErrCurrencyMismatch or ErrAmountMismatch when amount is not the order total, and
// a *TransitionError in any state but SHIPMENT_CREATED.
func (o *Order) RecordPaymentCaptured(paymentID string, amount Money) ([]Event, error) {
	if paymentID == "" {
		return nil, fmt.Errorf("record payment capture: payment id is empty: %w", ErrInvalidOrder)
	}
	if o.capturedPaymentID != "" {
		if o.capturedPaymentID == paymentID && o.captured == amount {
			return nil, nil
		}
		return nil, fmt.Errorf("record payment capture %q of %s: already captured %q of %s: %w",
			paymentID, amount, o.capturedPaymentID, o.captured, ErrConflict)
	}
	if o.state != StateShipmentCreated {
		return nil, illegal(o.state, CmdRecordPaymentCaptured)
	}
	if paymentID != o.paymentID {
		return nil, fmt.Errorf("record payment capture %q: authorized payment is %q: %w", paymentID, o.paymentID, ErrConflict)
	}
	if err := o.checkTotal(amount); err != nil {
		return nil, fmt.Errorf("record payment capture %q: %w", paymentID, err)
	}
	return []Event{&orderv1.OrderPaymentCaptured{OrderId: o.id, PaymentId: paymentID, Amount: amount.Proto()}}, nil
}

// Complete ends a fulfilled order: PAYMENT_CAPTURED -> COMPLETED with
// OrderCompleted; on a COMPLETED order it returns no events. It returns a
// *TransitionError in any other state.
func (o *Order) Complete() ([]Event, error) {
	switch o.state {
	case StateCompleted:
		return nil, nil
	case StatePaymentCaptured:
		return []Event{&orderv1.OrderCompleted{OrderId: o.id}}, nil
	default:
		return nil, illegal(o.state, CmdComplete)
	}
}

// RequestCancel starts cancelling with OrderCancelling; the saga then runs the
// compensations that CancelledFrom calls for and finishes with ConfirmCancelled.
// The user (byUser) may cancel only before the shipment exists: PENDING,
// PAYMENT_AUTHORIZED or INVENTORY_RESERVED. A failed saga step (!byUser) may cancel
// in any of those and also in SHIPMENT_CREATED and PAYMENT_CAPTURED, where the
// shipment is cancelled and the payment voided or refunded. An empty reason becomes
// ReasonUserCancelled or ReasonSagaFailed. On an order already CANCELLING or
// CANCELLED it returns no events and the first reason stands. It returns a
// *TransitionError in NEW, COMPLETED, and for the user after the shipment exists.
func (o *Order) RequestCancel(reason string, byUser bool) ([]Event, error) {
	switch {
	case o.state == StateCancelling || o.state == StateCancelled:
		return nil, nil
	case byUser && !o.state.UserCancellable(), !o.state.SagaCancellable():
		return nil, illegal(o.state, CmdRequestCancel)
	}
	if reason == "" {
		reason = ReasonSagaFailed
		if byUser {
			reason = ReasonUserCancelled
		}
	}
	return []Event{&orderv1.OrderCancelling{OrderId: o.id, Reason: reason, RequestedByUser: byUser}}, nil
}

// CancelByUser is RequestCancel(reason, true) on behalf of userID. It returns a
// *TransitionError on an order not yet placed, ErrNotOwner when userID did not
// place the order, and otherwise what RequestCancel returns.
func (o *Order) CancelByUser(userID, reason string) ([]Event, error) {
	if o.state == StateNew {
		return nil, illegal(o.state, CmdCancelByUser)
	}
	if !o.OwnedBy(userID) {
		return nil, fmt.Errorf("cancel order %q for user %q: %w", o.id, userID, ErrNotOwner)
	}
	return o.RequestCancel(reason, true)
}

// ConfirmCancelled ends a cancellation once every compensation has succeeded:
// CANCELLING -> CANCELLED with OrderCancelled carrying the recorded reason; on a
// CANCELLED order it returns no events. It returns a *TransitionError in any other
// state.
func (o *Order) ConfirmCancelled() ([]Event, error) {
	switch o.state {
	case StateCancelled:
		return nil, nil
	case StateCancelling:
		return []Event{&orderv1.OrderCancelled{OrderId: o.id, Reason: o.cancelReason}}, nil
	default:
		return nil, illegal(o.state, CmdConfirmCancelled)
	}
}

// checkTotal returns ErrCurrencyMismatch or ErrAmountMismatch unless amount is the
// order total to the minor unit.
func (o *Order) checkTotal(amount Money) error {
	if amount.Currency != o.total.Currency {
		return fmt.Errorf("amount %s, order total %s: %w", amount, o.total, ErrCurrencyMismatch)
	}
	if amount.Units != o.total.Units {
		return fmt.Errorf("amount %s, order total %s: %w", amount, o.total, ErrAmountMismatch)
	}
	return nil
}
