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
	repo     *Repository
	progress SagaProgress
}

// SagaProgress tells whether an order's fulfilment has gone past the point where
// its user may cancel. The order aggregate learns of a created shipment only after
// the saga does, so CancelOrder asks the saga too.
type SagaProgress interface {
	// Shipped reports whether the order's shipment exists (or the saga ended).
	Shipped(ctx context.Context, orderID string) (bool, error)
}

// WithSagaProgress returns h refusing cancellations that progress says come too
// late; nil leaves the aggregate's state as the only judge.
func (h CancelOrder) WithSagaProgress(progress SagaProgress) CancelOrder {
	h.progress = progress
	return h
}

// NewCancelOrder returns the handler; it panics on a nil repository.
func NewCancelOrder(repo *Repository) CancelOrder {
	if repo == nil {
		panic("cancel order: nil repository")
	}
	return CancelOrder{repo: repo}
}

// Handle records the cancellation request and returns the order. Cancelling an order
// already cancelling or cancelled changes nothing. It returns ErrUnauthenticated
// without a user, ErrNotFound when the order does not exist or belongs to another
// user, a *domain.TransitionError (domain.ErrIllegalTransition) once the shipment
// exists, ErrConcurrency and event-store errors wrapped.
func (h CancelOrder) Handle(ctx context.Context, cmd CancelOrderCommand) (*domain.Order, error) {
	if cmd.UserID == "" {
		return nil, ErrUnauthenticated
	}
	o, err := h.repo.Update(ctx, cmd.OrderID, func(o *domain.Order) ([]domain.Event, error) {
		events, err := o.CancelByUser(cmd.UserID, cmd.Reason)
		if o.State() == domain.StateNew || errors.Is(err, domain.ErrNotOwner) {
			return nil, ErrNotFound
		}
		if err != nil || len(events) == 0 || h.progress == nil {
			return events, err
		}
		shipped, err := h.progress.Shipped(ctx, cmd.OrderID)
		if err != nil {
			return nil, fmt.Errorf("%w: saga state: %w", ErrUnavailable, err)
		}
		if shipped {
			return nil, &domain.TransitionError{From: domain.StateShipmentCreated, Command: domain.CmdCancelByUser}
		}
		return events, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID, err)
	}
	return o, nil
}
