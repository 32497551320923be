package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/services/order/app"
)

// awaitSaga waits until the order's saga reaches want.
func (s *sagaShop) awaitSaga(id string, want saga.Status) {
	s.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if st, err := s.OrderService().Saga(context.Background(), id); err == nil && st.Status == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("saga %s never %v", id, want)
}

// cancelHooks are what the order service runs around putting a user's cancellation
// to the saga, set while the shop runs (app.InterleavedCanceller's Before and After).
type cancelHooks struct{ before, after atomic.Pointer[func()] }

// withCancelHooks makes the shop's order service call h's hooks.
func withCancelHooks(h *cancelHooks) shopOption {
	call := func(p *atomic.Pointer[func()]) func(context.Context, string) {
		return func(context.Context, string) {
			if fn := p.Load(); fn != nil {
				(*fn)()
			}
		}
	}
	return func(m *Main, _ *[]string) {
		m.WrapOrderCancel = func(next app.SagaCanceller) app.SagaCanceller {
			return app.InterleavedCanceller{SagaCanceller: next, Before: call(&h.before), After: call(&h.after)}
		}
	}
}

// The saga completes after CancelOrder found the order cancellable and before the
// saga is asked: the cancellation is refused, the order completes, and the auditor
// finds every invariant kept.
func TestSagaUserCancelLosesRaceToCompletion(t *testing.T) {
	var hooks cancelHooks
	s := startSagaShop(t, withCancelHooks(&hooks))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	id := s.placeHeldAt(ctx, app.StepCreateShipment)
	complete := func() {
		if err := s.Start(ctx, "shipping"); err != nil {
			t.Error(err)
		}
		s.awaitSaga(id, saga.Completed)
	}
	hooks.before.Store(&complete)
	_, err := s.orders.CancelOrder(s.ctx, &orderv1.CancelOrderRequest{OrderId: id, Reason: "changed my mind"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("CancelOrder after the saga completed = %v, want FailedPrecondition", err)
	}
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	s.audit()
}

// The saga accepts the cancellation, then the shipment is booked before the order
// records it: the late shipment is cancelled, nothing is captured, and the order
// ends CANCELLED with the user's reason.
func TestSagaUserCancelAcceptedThenLateShipment(t *testing.T) {
	var hooks cancelHooks
	s := startSagaShop(t, withCancelHooks(&hooks))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	before := s.stock()
	id := s.placeHeldAt(ctx, app.StepCreateShipment)
	ship := func() {
		if err := s.Start(ctx, "shipping"); err != nil {
			t.Error(err)
		}
		s.awaitSaga(id, saga.Cancelled)
	}
	hooks.after.Store(&ship)
	if _, err := s.orders.CancelOrder(s.ctx, &orderv1.CancelOrderRequest{OrderId: id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	hooks.after.Store(nil)
	if o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_CANCELLED); o.GetCancelReason() != "changed my mind" {
		t.Errorf("cancel reason %q", o.GetCancelReason())
	}
	if p := s.payment(id); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED {
		t.Errorf("payment %v, want voided", p.GetStatus())
	}
	// The shipment's compensation is not awaited by the saga; a later order through
	// shipping shows the queue behind it drained.
	s.awaitStatus(s.place("tok_visa", 1), orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if after := s.stock(); after != [3]int64{before[0] - 1, before[1], before[2] + 1} {
		t.Errorf("stock %v -> %v, want only the later order's unit sold", before, after)
	}
	s.audit()
}
