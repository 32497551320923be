package main

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/services/order/app"
	paymentapp "github.com/eventshop/eventshop/services/payment/app"
)

// A forged "payment declined" for an order waiting on its payment, correlated with
// the order as a real reply is, but answering no command the saga sent (none named,
// or a made-up one): the saga ignores both, and when the real payment service
// answers the order completes. Before, the first forgery cancelled the order.
func TestForgedReplyDoesNotMoveTheSaga(t *testing.T) {
	s := startSagaShop(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	before := s.stock()
	id := s.placeHeldAt(ctx, app.StepAuthorizePayment)

	// A compromised payment service: the only identity NATS lets publish payment
	// replies, so the saga's own check is what stands.
	nc, err := s.ConnectNATS(natsauth.Payment)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	forger := messaging.New(js, "payment")
	declined := &paymentv1.PaymentDeclined{OrderId: id, Reason: "forged", Code: "card_declined"}
	for _, opts := range [][]messaging.SendOption{
		{messaging.WithCorrelationID(id), messaging.WithSubject(id)},
		{messaging.WithCorrelationID(id), messaging.WithSubject(id), messaging.WithCausationID(id + "/0/1-not-sent")},
	} {
		if _, err := forger.PublishEvent(ctx, paymentapp.SubjectDeclined, "", declined, opts...); err != nil {
			t.Fatal(err)
		}
	}

	// The forgeries are ahead of the real answer on the same stream.
	if err := s.Start(ctx, "payment"); err != nil {
		t.Fatal(err)
	}
	o := s.awaitFinal(id)
	if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
		t.Fatalf("order %s ended %v (%q), want COMPLETED: a forged reply moved the saga", id, o.GetStatus(), o.GetCancelReason())
	}
	if after := s.stock(); after != [3]int64{before[0] - 1, before[1], before[2] + 1} {
		t.Errorf("stock %v -> %v, want one unit sold", before, after)
	}
	s.audit()
}
