package domain

import (
	"errors"
	"fmt"
)

var (
	// ErrIllegalTransition is matched by every *TransitionError: the command (or event)
	// is not allowed in the order's current state.
	ErrIllegalTransition = errors.New("illegal order state transition")
	// ErrInvalidOrder reports order data or command arguments that break an invariant
	// (no lines, zero quantity, missing ids, negative prices, ...).
	ErrInvalidOrder = errors.New("invalid order")
	// ErrAmountMismatch reports a payment amount that differs from the order total.
	ErrAmountMismatch = errors.New("amount does not match order total")
	// ErrConflict reports a step result that contradicts one the order already recorded,
	// e.g. a second payment authorization with a different payment id.
	ErrConflict = errors.New("conflicts with recorded order data")
	// ErrNotOwner reports a user acting on an order that belongs to someone else.
	ErrNotOwner = errors.New("order belongs to another user")
	// ErrInvalidEvent reports an event Apply cannot fold: nil, of an unknown type,
	// for another order, or missing data it must carry.
	ErrInvalidEvent = errors.New("invalid order event")
)

// TransitionError says which command (or applied event) the state From does not allow.
// It matches ErrIllegalTransition with errors.Is.
type TransitionError struct {
	From    State
	Command string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("order: %s not allowed in state %s", e.Command, e.From)
}

// Is makes errors.Is(err, ErrIllegalTransition) true for any *TransitionError.
func (e *TransitionError) Is(target error) bool { return target == ErrIllegalTransition }

func illegal(from State, command string) error {
	return &TransitionError{From: from, Command: command}
}
