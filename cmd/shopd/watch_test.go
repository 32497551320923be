package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/payment/provider"
)

// watchStates follows order id with WatchOrder until the stream ends, which it does
// after a COMPLETED or CANCELLED order, and returns every state it was sent. It
// returns the stream's error (wrapped) if the stream breaks, or if no final state
// comes within waitFor. Safe to call from any goroutine (benchmark buyers too).
func (s *sagaShop) watchStates(id string) ([]*orderv1.Order, error) {
	ctx, cancel := context.WithTimeout(s.ctx, waitFor)
	defer cancel()
	w, err := s.orders.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
	if err != nil {
		return nil, fmt.Errorf("WatchOrder %s: %w", id, err)
	}
	var seen []*orderv1.Order
	for {
		resp, err := w.Recv()
		if errors.Is(err, io.EOF) {
			return seen, nil
		}
		if err != nil {
			return seen, fmt.Errorf("watching %s after %d states: %w", id, len(seen), err)
		}
		seen = append(seen, resp.GetOrder())
	}
}

// watchFinal is watchStates failing the test on an error; call it from the test's
// goroutine.
func (s *sagaShop) watchFinal(id string) []*orderv1.Order {
	s.t.Helper()
	seen, err := s.watchStates(id)
	if err != nil {
		s.t.Fatal(err)
	}
	return seen
}

// The saga's outcome reaches a watcher without polling, whatever the outcome.
func TestWatchOrderFollowsTheSaga(t *testing.T) {
	s := startSagaShop(t)
	for _, tc := range []struct {
		card string
		want orderv1.OrderStatus
	}{
		{"tok_visa", orderv1.OrderStatus_ORDER_STATUS_COMPLETED},
		{provider.TokenChargeDeclined, orderv1.OrderStatus_ORDER_STATUS_CANCELLED},
	} {
		id := s.place(tc.card, 1)
		seen := s.watchFinal(id)
		if len(seen) == 0 {
			t.Fatalf("%s: the watch ended without sending the order", tc.card)
		}
		for i, o := range seen {
			if o.GetId() != id {
				t.Fatalf("%s: sent order %s, watching %s", tc.card, o.GetId(), id)
			}
			if i > 0 && o.GetVersion() <= seen[i-1].GetVersion() {
				t.Fatalf("%s: version %d after %d", tc.card, o.GetVersion(), seen[i-1].GetVersion())
			}
			// A saga step that changes nothing the order shows (a step started, a
			// compensation sent) moves its version but is not sent on its own.
			if i > 0 && o.GetStatus() == seen[i-1].GetStatus() && o.GetCancelReason() == seen[i-1].GetCancelReason() {
				t.Fatalf("%s: %v sent again at version %d", tc.card, o.GetStatus(), o.GetVersion())
			}
		}
		if last := seen[len(seen)-1]; last.GetStatus() != tc.want {
			t.Fatalf("%s: last state %v (%q), want %v", tc.card, last.GetStatus(), last.GetCancelReason(), tc.want)
		}
	}
	s.audit()
}
