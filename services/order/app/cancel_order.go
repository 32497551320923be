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
type CancelOrder struct{ repo *Repository }

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
		return events, err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel order %q: %w", cmd.OrderID, err)
	}
	return o, nil
}
