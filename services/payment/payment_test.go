package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/resilience"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/payment"
	"github.com/eventshop/eventshop/services/payment/app"
)

const (
	order1 = "0193a5a0-0000-7000-8000-000000000001"
	order2 = "0193a5a0-0000-7000-8000-000000000002"
	order3 = "0193a5a0-0000-7000-8000-000000000003"
	order4 = "0193a5a0-0000-7000-8000-000000000004"
	order5 = "0193a5a0-0000-7000-8000-000000000005"
	order6 = "0193a5a0-0000-7000-8000-000000000006"
)

type harness struct {
	client  paymentv1.PaymentServiceClient
	js      jetstream.JetStream
	replies *nats.Subscription
	dlq     *nats.Subscription
}

func start(t *testing.T, db *sqldb.DB) *harness {
	t.Helper()
	_, nc := natstest.Connect(t)
	svc, err := payment.New(context.Background(), payment.Config{
		Settings: participant.Settings{
			GRPCAddr:   "127.0.0.1:0",
			MaxDeliver: 3,
			Backoff:    []time.Duration{20 * time.Millisecond},
		},
		SlowDelay: 200 * time.Millisecond,
	}, payment.Deps{NATS: nc, DB: db})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	cc, err := resilience.Dial(svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	h := &harness{client: paymentv1.NewPaymentServiceClient(cc)}
	if h.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if h.replies, err = nc.SubscribeSync("evt.payment.>"); err != nil {
		t.Fatal(err)
	}
	if h.dlq, err = nc.SubscribeSync("dlq.cmd.payment.>"); err != nil {
		t.Fatal(err)
	}
	return h
}

// send publishes a command whose ce-id is id. dedup is its Nats-Msg-Id: a resend of
// the same command after the stream's dedup window has another one.
func (h *harness) send(t *testing.T, subject, id, dedup string, msg proto.Message) {
	t.Helper()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(messaging.HeaderSpecVersion, messaging.SpecVersion)
	m.Header.Set(messaging.HeaderID, id)
	m.Header.Set(messaging.HeaderType, string(msg.ProtoReflect().Descriptor().FullName()))
	m.Header.Set(messaging.HeaderSource, "/eventshop/order")
	m.Header.Set(jetstream.MsgIDHeader, dedup)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("send %s: %v", subject, err)
	}
}

func (h *harness) do(t *testing.T, subject, id string, msg proto.Message) *nats.Msg {
	t.Helper()
	h.send(t, subject, id, id, msg)
	return h.reply(t, id)
}

// reply waits for the next reply event caused by command id.
func (h *harness) reply(t *testing.T, commandID string) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m, err := h.replies.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		if m.Header.Get(messaging.HeaderCausationID) == commandID {
			return m
		}
	}
	t.Fatalf("no reply to %s", commandID)
	return nil
}

// deadLetter waits for command id to be dead-lettered and returns why.
func (h *harness) deadLetter(t *testing.T, commandID string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m, err := h.dlq.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		if m.Header.Get(messaging.HeaderID) == commandID {
			return m.Header.Get(messaging.HeaderError)
		}
	}
	t.Fatalf("%s was not dead-lettered", commandID)
	return ""
}

func decode[T proto.Message](t *testing.T, m *nats.Msg, into T) T {
	t.Helper()
	if got, want := m.Header.Get(messaging.HeaderType), string(into.ProtoReflect().Descriptor().FullName()); got != want {
		t.Fatalf("reply type %s on %s, want %s", got, m.Subject, want)
	}
	if err := proto.Unmarshal(m.Data, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func usd(u int64) *commonv1.Money { return &commonv1.Money{CurrencyCode: "USD", MinorUnits: u} }

func authorize(orderID, token string, units int64) *paymentv1.AuthorizePayment {
	return &paymentv1.AuthorizePayment{OrderId: orderID, Amount: usd(units), PaymentToken: token}
}

func (h *harness) byOrder(t *testing.T, orderID string) *paymentv1.Payment {
	t.Helper()
	resp, err := h.client.GetPaymentByOrder(context.Background(), &paymentv1.GetPaymentByOrderRequest{OrderId: orderID})
	if err != nil {
		t.Fatalf("GetPaymentByOrder(%s): %v", orderID, err)
	}
	return resp.GetPayment()
}

func TestPayment(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		h := start(t, db)
		t.Run("authorize capture refund", func(t *testing.T) { testMoneyFlow(t, h) })
		t.Run("compensations with nothing to undo", func(t *testing.T) { testNothingToUndo(t, h) })
		t.Run("tokens", func(t *testing.T) { testTokens(t, h) })
		t.Run("SQL enforces the money invariants", func(t *testing.T) { testConstraints(t, db) })
	})
}

func testMoneyFlow(t *testing.T, h *harness) {
	ctx := context.Background()
	first := h.do(t, app.SubjectAuthorize, "auth-1", authorize(order1, "tok_visa", 2500))
	authd := decode(t, first, &paymentv1.PaymentAuthorized{})
	if authd.GetOrderId() != order1 || authd.GetPaymentId() == "" || authd.GetAmount().GetMinorUnits() != 2500 {
		t.Fatalf("authorized = %v", authd)
	}
	if got := first.Header.Get(messaging.HeaderSubject); got != order1 {
		t.Errorf("ce-subject = %q, want the order id", got)
	}

	// Resent after the dedup window: same event id and payload, no second payment.
	h.send(t, app.SubjectAuthorize, "auth-1", "auth-1-resend", authorize(order1, "tok_visa", 2500))
	again := h.reply(t, "auth-1")
	if again.Header.Get(messaging.HeaderID) != first.Header.Get(messaging.HeaderID) || !proto.Equal(decode(t, again, &paymentv1.PaymentAuthorized{}), authd) {
		t.Fatal("duplicate authorize got a different reply")
	}
	// A new command for an authorized order answers with the same payment.
	if a := decode(t, h.do(t, app.SubjectAuthorize, "auth-1b", authorize(order1, "tok_visa", 2500)), &paymentv1.PaymentAuthorized{}); a.GetPaymentId() != authd.GetPaymentId() {
		t.Fatalf("second authorization of an order created payment %s", a.GetPaymentId())
	}
	p := h.byOrder(t, order1)
	if p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_AUTHORIZED || p.GetAuthorized().GetMinorUnits() != 2500 || p.GetCardBrand() != "visa" {
		t.Fatalf("payment = %v", p)
	}

	// Capture more than authorized: refused, nothing captured.
	over := &paymentv1.CapturePayment{OrderId: order1, PaymentId: authd.GetPaymentId(), Amount: usd(2501)}
	decode(t, h.do(t, app.SubjectCapture, "cap-over", over), &paymentv1.PaymentCaptureFailed{})
	if got := h.byOrder(t, order1).GetCaptured().GetMinorUnits(); got != 0 {
		t.Fatalf("captured %d after a refused capture", got)
	}

	capture := &paymentv1.CapturePayment{OrderId: order1, PaymentId: authd.GetPaymentId(), Amount: usd(2500)}
	if c := decode(t, h.do(t, app.SubjectCapture, "cap-1", capture), &paymentv1.PaymentCaptured{}); c.GetAmount().GetMinorUnits() != 2500 {
		t.Fatalf("captured = %v", c)
	}
	h.send(t, app.SubjectCapture, "cap-1", "cap-1-resend", capture)
	decode(t, h.reply(t, "cap-1"), &paymentv1.PaymentCaptured{})
	// A saga retry with a new id after a lost reply captures nothing more.
	decode(t, h.do(t, app.SubjectCapture, "cap-2", capture), &paymentv1.PaymentCaptured{})

	refund := &paymentv1.RefundPayment{OrderId: order1, PaymentId: authd.GetPaymentId(), Amount: usd(1000)}
	if r := decode(t, h.do(t, app.SubjectRefund, "ref-1", refund), &paymentv1.PaymentRefunded{}); r.GetAmount().GetMinorUnits() != 1000 {
		t.Fatalf("refunded = %v", r)
	}
	h.send(t, app.SubjectRefund, "ref-1", "ref-1-resend", refund)
	decode(t, h.reply(t, "ref-1"), &paymentv1.PaymentRefunded{})

	// More than what is left of the capture: refused with a reply, nothing moved, and
	// the same reply (same event id) for a resend.
	tooMuch := &paymentv1.RefundPayment{OrderId: order1, PaymentId: authd.GetPaymentId(), Amount: usd(1501)}
	refusal := h.do(t, app.SubjectRefund, "ref-over", tooMuch)
	if f := decode(t, refusal, &paymentv1.RefundFailed{}); refusal.Subject != app.SubjectRefundFailed ||
		f.GetOrderId() != order1 || f.GetPaymentId() != authd.GetPaymentId() || f.GetReason() == "" {
		t.Fatalf("refused refund = %v on %s", f, refusal.Subject)
	}
	h.send(t, app.SubjectRefund, "ref-over", "ref-over-resend", tooMuch)
	if again := h.reply(t, "ref-over"); again.Header.Get(messaging.HeaderID) != refusal.Header.Get(messaging.HeaderID) || again.Subject != app.SubjectRefundFailed {
		t.Fatalf("resent refused refund got %s, want the same RefundFailed", again.Subject)
	}
	p = h.byOrder(t, order1)
	if p.GetCaptured().GetMinorUnits() != 2500 || p.GetRefunded().GetMinorUnits() != 1000 || p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED {
		t.Fatalf("after refunds: %v", p)
	}
	got, err := h.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: authd.GetPaymentId()})
	if err != nil || !proto.Equal(got.GetPayment(), p) {
		t.Fatalf("GetPayment = %v, %v; want %v", got, err, p)
	}

	// Voiding a captured payment (compensation after capture) refunds the rest.
	decode(t, h.do(t, app.SubjectVoid, "void-1", &paymentv1.VoidAuthorization{OrderId: order1, PaymentId: authd.GetPaymentId()}), &paymentv1.AuthorizationVoided{})
	if p := h.byOrder(t, order1); p.GetRefunded().GetMinorUnits() != 2500 {
		t.Fatalf("void after capture left a charge: %v", p)
	}
}

func testNothingToUndo(t *testing.T, h *harness) {
	ctx := context.Background()
	v := decode(t, h.do(t, app.SubjectVoid, "void-none", &paymentv1.VoidAuthorization{OrderId: order2}), &paymentv1.AuthorizationVoided{})
	if v.GetOrderId() != order2 {
		t.Fatalf("voided = %v", v)
	}
	// The authorization arriving after its compensation must not take money.
	d := decode(t, h.do(t, app.SubjectAuthorize, "auth-late", authorize(order2, "tok_visa", 100)), &paymentv1.PaymentDeclined{})
	if d.GetCode() != "order_cancelled" {
		t.Fatalf("late authorization = %v", d)
	}
	if _, err := h.client.GetPaymentByOrder(ctx, &paymentv1.GetPaymentByOrderRequest{OrderId: order2}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetPaymentByOrder of a compensated order: %v, want NotFound", err)
	}

	r := decode(t, h.do(t, app.SubjectRefund, "refund-none", &paymentv1.RefundPayment{OrderId: order3, PaymentId: "p", Amount: usd(100)}), &paymentv1.PaymentRefunded{})
	if r.GetAmount().GetMinorUnits() != 0 {
		t.Fatalf("refund with nothing captured = %v", r)
	}

	// Refunding an authorization that was never captured voids it.
	a := decode(t, h.do(t, app.SubjectAuthorize, "auth-4", authorize(order4, "tok_mastercard", 700)), &paymentv1.PaymentAuthorized{})
	r = decode(t, h.do(t, app.SubjectRefund, "refund-4", &paymentv1.RefundPayment{OrderId: order4, PaymentId: a.GetPaymentId(), Amount: usd(700)}), &paymentv1.PaymentRefunded{})
	if p := h.byOrder(t, order4); r.GetAmount().GetMinorUnits() != 0 || p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED || p.GetCardBrand() != "mastercard" {
		t.Fatalf("refund of an authorization = %v, payment %v", r, p)
	}
	if _, err := h.client.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: "no-such-payment"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetPayment(unknown) = %v, want NotFound", err)
	}
}

func testTokens(t *testing.T, h *harness) {
	for _, tc := range []struct{ token, code string }{
		{"tok_chargeDeclined", "card_declined"},
		{"tok_insufficientFunds", "insufficient_funds"},
		{"tok_unknown", "invalid_token"},
	} {
		id := "auth-" + tc.token
		orderID := "0193a5a0-0000-7000-8000-0000000001" + map[string]string{"tok_chargeDeclined": "01", "tok_insufficientFunds": "02", "tok_unknown": "03"}[tc.token]
		d := decode(t, h.do(t, app.SubjectAuthorize, id, authorize(orderID, tc.token, 100)), &paymentv1.PaymentDeclined{})
		if d.GetCode() != tc.code || d.GetOrderId() != orderID {
			t.Errorf("%s: declined = %v, want code %s", tc.token, d, tc.code)
		}
		if p := h.byOrder(t, orderID); p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED || p.GetAuthorized().GetMinorUnits() != 0 {
			t.Errorf("%s: payment = %v", tc.token, p)
		}
	}

	decode(t, h.do(t, app.SubjectAuthorize, "auth-slow", authorize(order5, "tok_slow", 100)), &paymentv1.PaymentAuthorized{})

	// A processing error is transient: redelivered until MaxDeliver, then dead-lettered,
	// never answered and never charged.
	h.send(t, app.SubjectAuthorize, "auth-proc", "auth-proc", authorize(order6, "tok_processingError", 100))
	if why := h.deadLetter(t, "auth-proc"); why == "" {
		t.Fatal("dead letter without a reason")
	}
	if _, err := h.client.GetPaymentByOrder(context.Background(), &paymentv1.GetPaymentByOrderRequest{OrderId: order6}); status.Code(err) != codes.NotFound {
		t.Fatalf("processing error left a payment: %v", err)
	}

	// An invalid command is declined, not retried.
	d := decode(t, h.do(t, app.SubjectAuthorize, "auth-neg", authorize(order6, "tok_visa", -5)), &paymentv1.PaymentDeclined{})
	if d.GetCode() != "invalid_request" {
		t.Fatalf("negative amount = %v", d)
	}
}

func testConstraints(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	base := `INSERT INTO payments (id, order_id, status, currency, authorized, captured, refunded, card_brand,
	decline_code, decline_reason, create_time, update_time) VALUES ($1, $2, 3, 'USD', $3, $4, $5, '', '', '', 0, 0)`
	for i, amounts := range [][3]int64{{-1, 0, 0}, {100, 101, 0}, {100, 50, 51}, {100, -1, 0}} {
		id := "bad-" + string(rune('a'+i))
		if _, err := db.ExecContext(ctx, base, id, id, amounts[0], amounts[1], amounts[2]); err == nil {
			t.Errorf("authorized/captured/refunded %v accepted by the schema", amounts)
		}
	}
}
