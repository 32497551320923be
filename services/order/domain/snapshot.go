package domain

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidSnapshot reports a snapshot that no event history could have produced.
var ErrInvalidSnapshot = errors.New("invalid order snapshot")

// Snapshot is the whole state of an Order as plain data, for storing next to the
// event stream. It is an optimisation: the events stay the source of truth, and a
// snapshot at Version n must equal Rehydrate of the first n events.
type Snapshot struct {
	Version int64  `json:"version"`
	ID      string `json:"id"`
	UserID  string `json:"user_id"`
	State   State  `json:"state"`

	Lines          []Line  `json:"lines"`
	Subtotal       Money   `json:"subtotal"`
	ShippingCost   Money   `json:"shipping_cost"`
	Total          Money   `json:"total"`
	Address        Address `json:"address"`
	PaymentToken   string  `json:"payment_token"`
	IdempotencyKey string  `json:"idempotency_key,omitempty"`

	PaymentID         string `json:"payment_id,omitempty"`
	AuthorizedAmount  Money  `json:"authorized_amount"`
	ReservationID     string `json:"reservation_id,omitempty"`
	ShipmentID        string `json:"shipment_id,omitempty"`
	TrackingID        string `json:"tracking_id,omitempty"`
	CapturedPaymentID string `json:"captured_payment_id,omitempty"`
	CapturedAmount    Money  `json:"captured_amount"`

	CancelReason          string `json:"cancel_reason,omitempty"`
	CancelRequestedByUser bool   `json:"cancel_requested_by_user,omitempty"`
	CancelledFrom         State  `json:"cancelled_from,omitempty"`
}

// Snapshot returns the order's state; the result shares nothing with the order.
func (o *Order) Snapshot() Snapshot {
	return Snapshot{
		Version:               o.version,
		ID:                    o.id,
		UserID:                o.userID,
		State:                 o.state,
		Lines:                 slices.Clone(o.lines),
		Subtotal:              o.subtotal,
		ShippingCost:          o.shippingCost,
		Total:                 o.total,
		Address:               o.address,
		PaymentToken:          o.paymentToken,
		IdempotencyKey:        o.idempotencyKey,
		PaymentID:             o.paymentID,
		AuthorizedAmount:      o.authorized,
		ReservationID:         o.reservationID,
		ShipmentID:            o.shipmentID,
		TrackingID:            o.trackingID,
		CapturedPaymentID:     o.capturedPaymentID,
		CapturedAmount:        o.captured,
		CancelReason:          o.cancelReason,
		CancelRequestedByUser: o.cancelByUser,
		CancelledFrom:         o.cancelledFrom,
	}
}

// FromSnapshot restores an order from s, to which the events after s.Version are
// then applied. Like Rehydrate it is not a constructor. It returns
// ErrInvalidSnapshot when s has an unknown state, a version too small for its
// state, or lacks the ids its state implies.
func FromSnapshot(s Snapshot) (*Order, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("restore order %q at version %d: %w", s.ID, s.Version, err)
	}
	return &Order{
		id:                s.ID,
		userID:            s.UserID,
		state:             s.State,
		version:           s.Version,
		lines:             slices.Clone(s.Lines),
		subtotal:          s.Subtotal,
		shippingCost:      s.ShippingCost,
		total:             s.Total,
		address:           s.Address,
		paymentToken:      s.PaymentToken,
		idempotencyKey:    s.IdempotencyKey,
		paymentID:         s.PaymentID,
		authorized:        s.AuthorizedAmount,
		reservationID:     s.ReservationID,
		shipmentID:        s.ShipmentID,
		trackingID:        s.TrackingID,
		capturedPaymentID: s.CapturedPaymentID,
		captured:          s.CapturedAmount,
		cancelReason:      s.CancelReason,
		cancelByUser:      s.CancelRequestedByUser,
		cancelledFrom:     s.CancelledFrom,
	}, nil
}

// minVersion is the fewest events that reach each state.
var minVersion = map[State]int64{
	StateNew:               0,
	StatePending:           1,
	StatePaymentAuthorized: 2,
	StateInventoryReserved: 3,
	StateShipmentCreated:   4,
	StatePaymentCaptured:   5,
	StateCompleted:         6,
	StateCancelling:        2,
	StateCancelled:         3,
}

func (s Snapshot) validate() error {
	if !s.State.Valid() {
		return fmt.Errorf("state %s: %w", s.State, ErrInvalidSnapshot)
	}
	if s.Version < minVersion[s.State] {
		return fmt.Errorf("version %d too small for state %s: %w", s.Version, s.State, ErrInvalidSnapshot)
	}
	if s.State == StateNew {
		if s.Version != 0 || s.ID != "" {
			return fmt.Errorf("unplaced order with data: %w", ErrInvalidSnapshot)
		}
		return nil
	}
	if s.ID == "" || s.UserID == "" || len(s.Lines) == 0 {
		return fmt.Errorf("placed order without id, user or lines: %w", ErrInvalidSnapshot)
	}
	// Each step of the happy path must have left its id behind; a cancelled order
	// keeps the ids of the steps it passed, which CancelledFrom says.
	reached := s.State
	if s.State == StateCancelling || s.State == StateCancelled {
		if !s.CancelledFrom.SagaCancellable() {
			return fmt.Errorf("cancelled from %s: %w", s.CancelledFrom, ErrInvalidSnapshot)
		}
		reached = s.CancelledFrom
		need := minVersion[reached] + 1
		if s.State == StateCancelled {
			need++
		}
		if s.Version < need {
			return fmt.Errorf("version %d too small for %s from %s: %w", s.Version, s.State, reached, ErrInvalidSnapshot)
		}
	}
	switch {
	case reached >= StatePaymentAuthorized && s.PaymentID == "",
		reached >= StateInventoryReserved && s.ReservationID == "",
		reached >= StateShipmentCreated && s.ShipmentID == "",
		reached >= StatePaymentCaptured && s.CapturedPaymentID == "":
		return fmt.Errorf("state %s lacks the id of a step it passed: %w", s.State, ErrInvalidSnapshot)
	}
	return nil
}
