package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// hookedCanceller runs before, then asks the real saga: the saga moves on between
// CancelOrder's own check of the order and the saga's decision.
type hookedCanceller struct {
	before func(ctx context.Context, orderID string)
	next   app.SagaCanceller
}

func (h hookedCanceller) CancelForUser(ctx context.Context, o *domain.Order, reason string) (bool, error) {
	h.before(ctx, o.ID())
	return h.next.CancelForUser(ctx, o, reason)
}

// shipLate answers the saga's CreateShipment, which the script left unanswered.
func (e *sagaEnv) shipLate(t *testing.T, ctx context.Context, orderID string) {
	t.Helper()
	for _, c := range e.tr.Sent() {
		if c.SagaID == orderID && c.Subject == app.SubjectCreateShipment && !c.Compensation {
			if err := e.orch.HandleReply(ctx, saga.Reply{SagaID: orderID, ID: "late-" + c.ID, CausationID: c.ID,
				Msg: &shippingv1.ShipmentCreated{OrderId: orderID, ShipmentId: "ship-1", TrackingId: "TRACK-1"}}); err != nil {
				t.Error(err)
			}
			return
		}
	}
	t.Error("no CreateShipment sent")
}

func (e *sagaEnv) awaitSaga(t *testing.T, ctx context.Context, id string, want saga.Status) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.orch.Get(ctx, id)
		if err == nil && st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("saga %s never %v: %v %v", id, want, st.Status, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The saga completes after CancelOrder found the order cancellable and before the
// saga is asked: the saga refuses the cancellation, nothing is recorded, and the
// order completes with every step (no order left CANCELLING, nothing compensated).
func TestUserCancelLosingTheRaceToCompletion(t *testing.T) {
	script := happyParticipants()
	delete(script, app.SubjectCreateShipment) // the saga waits at the shipment
	env := startSaga(t, script)
	id := env.place(t)
	env.awaitState(t, id, domain.StateInventoryReserved)

	cancel := app.NewCancelOrder(env.repo).WithSagaCanceller(hookedCanceller{
		before: func(ctx context.Context, orderID string) {
			env.shipLate(t, ctx, orderID)
			env.awaitSaga(t, ctx, orderID, saga.Completed)
		},
		next: app.SagaCancel{Orch: env.orch},
	})
	_, err := cancel.Handle(t.Context(), app.CancelOrderCommand{UserID: "alice", OrderID: id, Reason: "changed my mind"})
	if !errors.Is(err, domain.ErrIllegalTransition) {
		t.Errorf("cancel after the saga completed = %v, want a refused transition", err)
	}
	o := env.awaitState(t, id, domain.StateCompleted)
	if o.ShipmentID() != "ship-1" || !o.PaymentCaptured() {
		t.Fatalf("completed order misses a step: %+v", o.Snapshot())
	}
	for _, c := range env.tr.Sent() {
		if c.Compensation {
			t.Errorf("compensation %s sent for a completed order", c.Subject)
		}
	}
}

// The saga accepts the cancellation, then the shipment's reply arrives before
// CancelOrder answers: the late shipment is cancelled, the saga never captures,
// and the order ends CANCELLED with the user's reason. (When the order checked the
// saga and appended on its own, the saga completed here and the order stayed
// CANCELLING.)
func TestUserCancelAcceptedThenLateShipment(t *testing.T) {
	script := happyParticipants()
	delete(script, app.SubjectCreateShipment)
	env := startSaga(t, script)
	id := env.place(t)
	env.awaitState(t, id, domain.StateInventoryReserved)

	cancel := app.NewCancelOrder(env.repo).WithSagaCanceller(app.InterleavedCanceller{
		SagaCanceller: app.SagaCancel{Orch: env.orch},
		After: func(ctx context.Context, orderID string) {
			env.shipLate(t, ctx, orderID)
			env.awaitSaga(t, ctx, orderID, saga.Cancelled)
		},
	})
	_, err := cancel.Handle(t.Context(), app.CancelOrderCommand{UserID: "alice", OrderID: id, Reason: "changed my mind"})
	if err != nil {
		t.Fatal(err)
	}
	o := env.awaitState(t, id, domain.StateCancelled)
	if o.CancelReason() != "changed my mind" || !o.CancelRequestedByUser() {
		t.Errorf("cancelled with reason %q by user %v", o.CancelReason(), o.CancelRequestedByUser())
	}
	var undos []string
	for _, c := range env.tr.Sent() {
		if c.Subject == app.SubjectCapturePayment || c.Subject == app.SubjectCommitReservation {
			t.Errorf("%s sent for a cancelled order", c.Subject)
		}
		if c.Compensation {
			undos = append(undos, c.Subject+" "+c.ID[strings.Index(c.ID, "/"):])
		}
	}
	want := []string{
		app.SubjectCancelShipment + " /2/undo/cancelled",
		app.SubjectReleaseInventory + " /1/undo/1",
		app.SubjectVoidAuthorization + " /0/undo/1",
	}
	slices.Sort(undos)
	slices.Sort(want)
	if !slices.Equal(undos, want) {
		t.Fatalf("compensations %v, want %v", undos, want)
	}
}

// A cancellation reaching a saga already past the shipment is ignored by it.
func TestSagaIgnoresUserCancelAfterShipment(t *testing.T) {
	script := happyParticipants()
	delete(script, app.SubjectCapturePayment) // the saga waits at the capture
	env := startSaga(t, script)
	id := env.place(t)
	env.awaitSaga(t, t.Context(), id, saga.Running)
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(env.subjects(), app.SubjectCapturePayment) {
		if time.Now().After(deadline) {
			t.Fatal("capture never sent")
		}
		time.Sleep(5 * time.Millisecond)
	}
	o, err := env.repo.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := app.SagaCancel{Orch: env.orch}.CancelForUser(t.Context(), o, "too late")
	if err != nil || accepted {
		t.Fatalf("CancelForUser past the shipment = %v, %v; want refused", accepted, err)
	}
	if st, err := env.orch.Get(t.Context(), id); err != nil || st.Status != saga.Running {
		t.Fatalf("saga %v, %v; want still running", st.Status, err)
	}
}
