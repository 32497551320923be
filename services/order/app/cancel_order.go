package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventshop/eventshop/services/order/domain"
)

// CancelOrderCommand asks to cancel OrderID on behalf of UserID (the verified caller).
type CancelOrderCommand struct {
	UserID  string
	OrderID string
	Reason  string
}

// CancelOrder lets a user cancel their own order before it ships.
type CancelOrder struct {
	repo  *Repository
	sagas SagaCanceller
}

// SagaCanceller puts a user's cancellation to the order's saga. The aggregate learns
// of the saga's progress only after the saga made it, so the saga decides: it is
// the one log where the cancellation and the step replies are serialised.
type SagaCanceller interface {
	// CancelForUser asks the saga of o to stop, as a failure of its step in
	// progress. accepted is false, and nothing changed, when the saga is already
	// past the shipment or completed. It returns the store's error.
	CancelForUser(ctx context.Context, o *domain.Order, reason string) (accepted bool, err error)
}

// WithSagaCanceller returns h asking sagas before it records a cancellation; nil
// leaves the aggregate's state as the only judge.
func (h CancelOrder) WithSagaCanceller(sagas SagaCanceller) CancelOrder {
	h.sagas = sagas
	return h
}

// InterleavedCanceller is a SagaCanceller around another that calls Before ahead of
// asking it and After once it accepted, which are the two points where the saga may
// move on while a user's cancellation is being decided (after the order was found
// cancellable; before the order is read back). Tests put it around the real one to
// force those interleavings; a nil hook is skipped.
type InterleavedCanceller struct {
	SagaCanceller
	Before, After func(ctx context.Context, orderID string)
}

// CancelForUser implements SagaCanceller.
func (c InterleavedCanceller) CancelForUser(ctx context.Context, o *domain.Order, reason string) (bool, error) {
	if c.Before != nil {
		c.Before(ctx, o.ID())
	}
	accepted, err := c.SagaCanceller.CancelForUser(ctx, o, reason)
	if accepted && err == nil && c.After != nil {
		c.After(ctx, o.ID())
	}
	return accepted, err
}

// NewCancelOrder returns the handler; it panics on a nil repository.
func NewCancelOrder(repo *Repository) CancelOrder {
	if repo == nil {
		panic("cancel order: nil repository")
	}
	return CancelOrder{repo: repo}
}

// Handle records the cancellation request and returns the order. Cancelling an order
// already cancelling or cancelled changes nothing. With a SagaCanceller the saga
// decides, and its own append to the order's stream (the step failing on the
// user's OrderCancelling) is the record, so an order never waits for compensations
// its saga will not run; without one the aggregate decides and records it. It returns
// ErrUnauthenticated without a user, ErrNotFound when the order does not exist or
// belongs to another user, a *domain.TransitionError (domain.ErrIllegalTransition)
// once the shipment exists, ErrUnavailable when the saga cannot be asked,
// ErrConcurrency and event-store errors wrapped.
func (h CancelOrder) Handle(ctx context.Context, cmd CancelOrderCommand) (*domain.Order, error) {
	if cmd.UserID == "" {
		return nil, ErrUnauthenticated
	}
	decide := func(o *domain.Order) ([]domain.Event, error) {
		events, err := o.CancelByUser(cmd.UserID, cmd.Reason)
		if o.State() == domain.StateNew || errors.Is(err, domain.ErrNotOwner) {
			return nil, ErrNotFound
		}
		return events, err
	}
	if h.sagas != nil {
		o, err := h.repo.Load(ctx, cmd.OrderID)
		if err != nil {
			return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID, err)
		}
		events, err := decide(o)
		if err != nil {
			return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID, err)
		}
		if len(events) == 0 {
			return o, nil
		}
		accepted, err := h.sagas.CancelForUser(ctx, o, cmd.Reason)
		if err != nil {
			return nil, fmt.Errorf("cancel order %q: %w: saga: %w", cmd.OrderID, ErrUnavailable, err)
		}
		if !accepted {
			return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID,
				&domain.TransitionError{From: domain.StateShipmentCreated, Command: domain.CmdCancelByUser})
		}
		// The saga's own append recorded the cancellation in the order's stream.
		o, err = h.repo.Load(ctx, cmd.OrderID)
		if err != nil {
			return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID, err)
		}
		return o, nil
	}
	o, err := h.repo.Update(ctx, cmd.OrderID, decide)
	if err != nil {
		return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID, err)
	}
	return o, nil
}
