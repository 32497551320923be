package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/services/order/app"
)

// attacker is a client of the shop's NATS over TCP, as another process on the host
// or a compromised pod would be, holding one identity's seed (or none).
type attacker struct {
	t    *testing.T
	js   jetstream.JetStream
	errs chan error
}

func (s *sagaShop) attackAs(t *testing.T, name string) *attacker {
	t.Helper()
	as, err := s.Identities().Option(name)
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{t: t, errs: make(chan error, 64)}
	nc, err := nats.Connect(s.NATSClientURL(), as, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case a.errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if a.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return a
}

// refused checks that a request failed and that the server refused it for subject.
func (a *attacker) refused(what, subject string, err error) {
	a.t.Helper()
	if err == nil {
		a.t.Fatalf("%s: succeeded", what)
	}
	a.violation(what, subject)
}

// violation waits for the server's refusal of subject: a core publish or a
// subscription gets no other answer.
func (a *attacker) violation(what, subject string) {
	a.t.Helper()
	select {
	case got := <-a.errs:
		if !errors.Is(got, nats.ErrPermissionViolation) || !strings.Contains(got.Error(), subject) {
			a.t.Fatalf("%s: server said %v, want a permission violation for %s", what, got, subject)
		}
	case <-time.After(5 * time.Second):
		a.t.Fatalf("%s: no permission violation for %s", what, subject)
	}
}

func short(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// The attacks that owned the shop through NATS, replayed against the real embedded
// server: a client without credentials, and each participant's identity as a
// compromised participant would use it. Nothing they try moves money, stock or an
// order.
func TestNATSRefusesWhatARoleMayNotDo(t *testing.T) {
	s := startSagaShop(t)
	id := s.place("tok_visa", 1)
	o := s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	stock, pay := s.stock(), s.payment(id)

	// Anyone on the host: no credentials, no connection.
	if nc, err := nats.Connect(s.NATSClientURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("anonymous connect: %v, want an authorization violation", err)
	}

	// A compromised shipping: refund the completed order and cancel its shipment
	// (commands only order may send), or speak for payment.
	ship := s.attackAs(t, natsauth.Shipping)
	bus := messaging.New(ship.js, "order")
	_, err := bus.SendCommand(short(t), app.SubjectVoidAuthorization, "", &paymentv1.VoidAuthorization{OrderId: id, PaymentId: o.GetPaymentId()})
	ship.refused("shipping sends a payment void", app.SubjectVoidAuthorization, err)
	_, err = bus.SendCommand(short(t), app.SubjectCancelShipment, "", &shippingv1.CancelShipment{OrderId: id})
	ship.refused("shipping sends itself a cancel", app.SubjectCancelShipment, err)
	_, err = messaging.New(ship.js, "payment").PublishEvent(short(t), "evt.payment.declined", "",
		&paymentv1.PaymentDeclined{OrderId: id, Reason: "forged"}, messaging.WithCorrelationID(id))
	ship.refused("shipping forges a payment reply", "evt.payment.declined", err)

	// A compromised payment: take the shop's streams, carts and traffic.
	pay1 := s.attackAs(t, natsauth.Payment)
	pay1.refused("payment deletes the order stream", "STREAM.DELETE", pay1.js.DeleteStream(short(t), "ES_order"))
	dlq, err := pay1.js.Stream(short(t), messaging.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	pay1.refused("payment purges the DLQ", "STREAM.PURGE", dlq.Purge(short(t)))
	_, err = pay1.js.PauseConsumer(short(t), messaging.EventStream, natsauth.OrderReplyConsumer, time.Now().Add(time.Hour))
	pay1.refused("payment pauses order's replies", "CONSUMER.PAUSE", err)
	_, err = pay1.js.KeyValue(short(t), natsauth.CartBucket)
	pay1.refused("payment opens the carts bucket", "KV_carts", err)
	if err := pay1.js.Conn().Publish("$KV.carts.alice", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	pay1.violation("payment overwrites a cart", "$KV.carts.alice")
	if _, err := pay1.js.Conn().Subscribe(">", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	pay1.violation("payment listens to everything", `">"`)
	_, err = pay1.js.CreateOrUpdateConsumer(short(t), messaging.CommandStream, jetstream.ConsumerConfig{
		Durable: natsauth.CommandConsumer(natsauth.Payment), FilterSubject: "cmd.shipping.>"})
	pay1.refused("payment takes shipping's commands", "cmd.shipping.>", err)

	// A compromised gateway (the only workload the internet reaches): it keeps
	// sessions in its bucket and may do nothing else on the bus.
	gw := s.attackAs(t, natsauth.Gateway)
	_, err = messaging.New(gw.js, "order").SendCommand(short(t), app.SubjectVoidAuthorization, "", &paymentv1.VoidAuthorization{OrderId: id, PaymentId: o.GetPaymentId()})
	gw.refused("gateway sends a payment void", app.SubjectVoidAuthorization, err)
	_, err = gw.js.KeyValue(short(t), natsauth.CartBucket)
	gw.refused("gateway opens the carts bucket", "KV_carts", err)
	_, err = messaging.NewDeadLetters(gw.js).List(short(t), 0)
	gw.refused("gateway reads the dead letters", messaging.DLQStream, err)
	sessions, err := gw.js.Stream(short(t), "KV_"+natsauth.GatewaySessionBucket)
	if err != nil {
		t.Fatal(err)
	}
	gw.refused("gateway purges every session", "STREAM.PURGE", sessions.Purge(short(t)))
	gw.refused("gateway deletes the order stream", "STREAM.DELETE", gw.js.DeleteStream(short(t), "ES_order"))

	// Nothing moved: the order, its payment, the stock, the books.
	if got := s.awaitFinal(id); got.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
		t.Fatalf("order is %v after the attacks", got.GetStatus())
	}
	if got := s.payment(id); got.GetStatus() != pay.GetStatus() || got.GetCaptured().GetMinorUnits() != pay.GetCaptured().GetMinorUnits() {
		t.Fatalf("payment %v %v -> %v %v", pay.GetStatus(), pay.GetCaptured(), got.GetStatus(), got.GetCaptured())
	}
	if after := s.stock(); after != stock {
		t.Fatalf("stock %v -> %v", stock, after)
	}
	// The streams are there and the shop still takes orders.
	s.awaitStatus(s.place("tok_visa", 1), orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	s.audit()
}

// shopd makes the identities itself, readable only by the user running it.
func TestShopdCreatesOwnerOnlyNATSIdentities(t *testing.T) {
	s := startSagaShop(t)
	dir := filepath.Join(s.dataDir, "nats-identities")
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v, want a 0700 directory", dir, st, err)
	}
	for _, name := range natsauth.Names {
		st, err := os.Stat(filepath.Join(dir, name+".nk"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s identity: %v %v, want a 0600 file", name, st, err)
		}
	}
}
