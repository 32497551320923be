package domain

import "strconv"

// State is a step of the order state machine:
//
//	NEW -> PENDING -> PAYMENT_AUTHORIZED -> INVENTORY_RESERVED -> SHIPMENT_CREATED -> PAYMENT_CAPTURED -> COMPLETED
//	any of PENDING..PAYMENT_CAPTURED -> CANCELLING -> CANCELLED
//
// COMPLETED and CANCELLED are final. The numbers equal those of orderv1.OrderStatus
// (NEW is its UNSPECIFIED) so stored values read the same on both sides.
type State int

const (
	// StateNew is an order that has not been placed: the zero Order.
	StateNew State = iota
	StatePending
	StatePaymentAuthorized
	StateInventoryReserved
	StateShipmentCreated
	StatePaymentCaptured
	StateCompleted
	StateCancelling
	StateCancelled
)

var stateNames = [...]string{
	StateNew:               "NEW",
	StatePending:           "PENDING",
	StatePaymentAuthorized: "PAYMENT_AUTHORIZED",
	StateInventoryReserved: "INVENTORY_RESERVED",
	StateShipmentCreated:   "SHIPMENT_CREATED",
	StatePaymentCaptured:   "PAYMENT_CAPTURED",
	StateCompleted:         "COMPLETED",
	StateCancelling:        "CANCELLING",
	StateCancelled:         "CANCELLED",
}

func (s State) String() string {
	if s.Valid() {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the declared states.
func (s State) Valid() bool { return s >= StateNew && s <= StateCancelled }

// Final reports whether no command can move the order out of s.
func (s State) Final() bool { return s == StateCompleted || s == StateCancelled }

// UserCancellable reports whether the user may still cancel in s: only before the
// shipment exists, because after that cancelling means recalling a parcel.
func (s State) UserCancellable() bool {
	return s == StatePending || s == StatePaymentAuthorized || s == StateInventoryReserved
}

// SagaCancellable reports whether a failed saga step may cancel in s: any placed,
// non-final state that is not already cancelling.
func (s State) SagaCancellable() bool { return s >= StatePending && s <= StatePaymentCaptured }
