package messaging_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/poll"
)

func TestCloudEventsHeaders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := time.Now().UTC()

	id, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "saga-1:authorize:1", authorize(),
		messaging.WithSubject(orderID), messaging.WithCausationID("evt-0"), messaging.WithCorrelationID("saga-1"))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if id != "saga-1:authorize:1" {
		t.Errorf("id = %q, want the caller's id", id)
	}

	raw := lastMsg(t, e.js, messaging.CommandStream, "cmd.payment.authorize")
	want := map[string]string{
		"ce-specversion":   "1.0",
		"ce-id":            "saga-1:authorize:1",
		"Nats-Msg-Id":      "saga-1:authorize:1",
		"ce-type":          "eventshop.payment.v1.AuthorizePayment",
		"ce-source":        "/eventshop/order",
		"ce-subject":       orderID,
		"ce-causationid":   "evt-0",
		"ce-correlationid": "saga-1",
		"content-type":     "application/protobuf",
	}
	for k, v := range want {
		if got := raw.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, raw.Header.Get("ce-time"))
	if err != nil {
		t.Fatalf("ce-time %q is not RFC 3339: %v", raw.Header.Get("ce-time"), err)
	}
	if ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("ce-time %v is not the send time", ts)
	}
	var got paymentv1.AuthorizePayment
	if err := proto.Unmarshal(raw.Data, &got); err != nil || !proto.Equal(&got, authorize()) {
		t.Errorf("payload = %v (%v), want %v", &got, err, authorize())
	}

	// An empty id gets a fresh UUIDv7, different every time.
	id1, err := e.bus.PublishEvent(ctx, "evt.payment.authorized", "", &paymentv1.PaymentAuthorized{OrderId: orderID})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	id2, _ := e.bus.PublishEvent(ctx, "evt.payment.authorized", "", &paymentv1.PaymentAuthorized{OrderId: orderID})
	if len(id1) != 36 || id1[14] != '7' || id1 == id2 {
		t.Errorf("generated ids %q, %q: want distinct UUIDv7s", id1, id2)
	}

	// The handler sees the same attributes.
	seen := make(chan messaging.Message, 1)
	c, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"),
		messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
			if !proto.Equal(cmd, authorize()) {
				t.Errorf("handler got %v", cmd)
			}
			seen <- m
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	run(t, c)
	m := receive(t, seen, "delivery")
	if m.ID != "saga-1:authorize:1" || m.Type != "eventshop.payment.v1.AuthorizePayment" ||
		m.Source != "/eventshop/order" || m.Subject != orderID || m.CausationID != "evt-0" ||
		m.CorrelationID != "saga-1" || m.Destination != "cmd.payment.authorize" || m.Attempt != 1 ||
		!m.Time.Equal(ts) || m.Header.Get("ce-specversion") != "1.0" {
		t.Errorf("message = %+v", m)
	}
}

func TestSubjectMustMatchKind(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.bus.SendCommand(ctx, "evt.payment.authorized", "", authorize()); !errors.Is(err, messaging.ErrBadSubject) {
		t.Errorf("command on evt.: err = %v, want ErrBadSubject", err)
	}
	if _, err := e.bus.PublishEvent(ctx, "cmd.payment.authorize", "", authorize()); !errors.Is(err, messaging.ErrBadSubject) {
		t.Errorf("event on cmd.: err = %v, want ErrBadSubject", err)
	}
}

func TestRedeliveryAfterHandlerError(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var calls atomic.Int32
	attempts := make(chan int, 10)
	c, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"),
		messaging.Handle(func(ctx context.Context, m messaging.Message, _ *paymentv1.AuthorizePayment) error {
			attempts <- m.Attempt
			if calls.Add(1) <= 2 {
				return errors.New("provider unavailable")
			}
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	run(t, c)
	if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize()); err != nil {
		t.Fatalf("send: %v", err)
	}
	for want := 1; want <= 3; want++ {
		if got := receive(t, attempts, "attempt"); got != want {
			t.Errorf("attempt = %d, want %d", got, want)
		}
	}
	// Acknowledged: gone from the work queue and nothing pending.
	poll.Until(t, "ack", func() bool {
		return streamMsgs(t, e.js, messaging.CommandStream) == 0 && settled(t, e.js, messaging.CommandStream, "payment-commands")
	})
	if n := streamMsgs(t, e.js, messaging.DLQStream); n != 0 {
		t.Errorf("DLQ holds %d messages, want 0", n)
	}
}

// dlqCase publishes one message that the consumer cannot process and returns the
// dead letter and how often the handler ran; a second, good message proves that the
// consumer went on and the bad one did not come back.
func dlqCase(t *testing.T, handler func(calls int) error, send func(e *env) string) (*jetstream.RawStreamMsg, int) {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan string, 10)
	c, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"),
		messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
			mu.Lock()
			calls[m.ID]++
			n := calls[m.ID]
			mu.Unlock()
			if cmd.GetPaymentToken() == "good" {
				done <- m.ID
				return nil
			}
			return handler(n)
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	run(t, c)
	badID := send(e)

	poll.Until(t, "dead letter", func() bool { return streamMsgs(t, e.js, messaging.DLQStream) == 1 })
	dead := lastMsg(t, e.js, messaging.DLQStream, "dlq.cmd.payment.authorize")

	good := authorize()
	good.PaymentToken = "good"
	goodID, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", good)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := receive(t, done, "good message"); got != goodID {
		t.Fatalf("handled %s, want %s", got, goodID)
	}
	poll.Until(t, "settled", func() bool {
		return streamMsgs(t, e.js, messaging.CommandStream) == 0 && settled(t, e.js, messaging.CommandStream, "payment-commands")
	})
	mu.Lock()
	defer mu.Unlock()
	if dead.Header.Get("ce-id") != badID {
		t.Errorf("dead letter ce-id = %q, want %q", dead.Header.Get("ce-id"), badID)
	}
	return dead, calls[badID]
}

func sendBad(e *env) string {
	id, err := e.bus.SendCommand(context.Background(), "cmd.payment.authorize", "", authorize(),
		messaging.WithSubject(orderID), messaging.WithCorrelationID("saga-9"))
	if err != nil {
		panic(err)
	}
	return id
}

func TestDeadLetterAfterMaxDeliver(t *testing.T) {
	dead, calls := dlqCase(t, func(int) error { return errors.New("provider unavailable") }, sendBad)
	if calls != 3 {
		t.Errorf("handler ran %d times, want MaxDeliver = 3", calls)
	}
	want := map[string]string{
		"ce-error":         "provider unavailable",
		"x-dlq-consumer":   "payment-commands",
		"x-dlq-subject":    "cmd.payment.authorize",
		"x-dlq-deliveries": "3",
		"ce-type":          "eventshop.payment.v1.AuthorizePayment",
		"ce-source":        "/eventshop/order",
		"ce-subject":       orderID,
		"ce-correlationid": "saga-9",
		"ce-specversion":   "1.0",
		"content-type":     "application/protobuf",
	}
	for k, v := range want {
		if got := dead.Header.Get(k); got != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	var cmd paymentv1.AuthorizePayment
	if err := proto.Unmarshal(dead.Data, &cmd); err != nil || !proto.Equal(&cmd, authorize()) {
		t.Errorf("dead letter payload = %v (%v)", &cmd, err)
	}
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	dead, calls := dlqCase(t, func(int) error {
		return messaging.Permanent(errors.New("card number invalid"))
	}, sendBad)
	if calls != 1 {
		t.Errorf("handler ran %d times, want 1", calls)
	}
	if got := dead.Header.Get("ce-error"); !strings.Contains(got, "card number invalid") {
		t.Errorf("ce-error = %q", got)
	}
	if got := dead.Header.Get("x-dlq-deliveries"); got != "1" {
		t.Errorf("x-dlq-deliveries = %q, want 1", got)
	}
}

func TestUnknownTypeDeadLetters(t *testing.T) {
	dead, calls := dlqCase(t, func(int) error { return nil }, func(e *env) string {
		// Right subject, but a type no handler of the consumer accepts.
		id, err := e.bus.SendCommand(context.Background(), "cmd.payment.authorize", "", &paymentv1.RefundPayment{OrderId: orderID})
		if err != nil {
			panic(err)
		}
		return id
	})
	if calls != 0 {
		t.Errorf("handler ran %d times, want 0", calls)
	}
	if got := dead.Header.Get("ce-error"); !strings.Contains(got, "eventshop.payment.v1.RefundPayment") {
		t.Errorf("ce-error = %q, want it to name the type", got)
	}
}

func TestSameIDPublishedTwiceIsHandledOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan string, 10)
	c, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"),
		messaging.Handle(func(ctx context.Context, m messaging.Message, _ *paymentv1.AuthorizePayment) error {
			mu.Lock()
			calls[m.ID]++
			mu.Unlock()
			done <- m.ID
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	// Both sends happen before the consumer runs, so the second cannot be mistaken
	// for a late redelivery.
	for range 2 {
		if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "saga-7:authorize:1", authorize()); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "sentinel", authorize()); err != nil {
		t.Fatalf("send: %v", err)
	}
	run(t, c)
	for receive(t, done, "sentinel") != "sentinel" {
	}
	poll.Until(t, "settled", func() bool { return settled(t, e.js, messaging.CommandStream, "payment-commands") })
	mu.Lock()
	defer mu.Unlock()
	if calls["saga-7:authorize:1"] != 1 {
		t.Errorf("duplicate handled %d times, want 1", calls["saga-7:authorize:1"])
	}
}

func TestLongHandlerIsKeptAlive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := fastConfig("payment-commands", "cmd.payment.>")
	cfg.AckWait = 600 * time.Millisecond
	var calls atomic.Int32
	done := make(chan struct{}, 10)
	c, err := e.bus.NewConsumer(ctx, cfg,
		messaging.Handle(func(ctx context.Context, m messaging.Message, _ *paymentv1.AuthorizePayment) error {
			calls.Add(1)
			time.Sleep(3 * cfg.AckWait) // the work itself, several times AckWait
			done <- struct{}{}
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	run(t, c)
	if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize()); err != nil {
		t.Fatalf("send: %v", err)
	}
	receive(t, done, "handler")
	poll.Until(t, "settled", func() bool {
		return streamMsgs(t, e.js, messaging.CommandStream) == 0 && settled(t, e.js, messaging.CommandStream, "payment-commands")
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1 (InProgress should prevent redelivery)", n)
	}
}

func TestWorkQueueRefusesOverlappingConsumers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	h := messaging.Handle(func(context.Context, messaging.Message, *paymentv1.AuthorizePayment) error { return nil })
	if _, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"), h); err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	if _, err := e.bus.NewConsumer(ctx, fastConfig("payment-authorize", "cmd.payment.authorize"), h); err == nil {
		t.Fatal("overlapping work-queue consumer was accepted")
	}
	// Redeclaring the same durable at start-up is fine.
	if _, err := e.bus.NewConsumer(ctx, fastConfig("payment-commands", "cmd.payment.>"), h); err != nil {
		t.Fatalf("redeclare: %v", err)
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	h := messaging.Handle(func(context.Context, messaging.Message, *paymentv1.AuthorizePayment) error { return nil })
	e := newEnv(t)
	tests := []struct {
		name string
		cfg  messaging.ConsumerConfig
	}{
		{"no durable", messaging.ConsumerConfig{Subjects: []string{"cmd.payment.>"}}},
		{"dotted durable", messaging.ConsumerConfig{Durable: "a.b", Subjects: []string{"cmd.payment.>"}}},
		{"no subjects", messaging.ConsumerConfig{Durable: "x"}},
		{"mixed subjects", messaging.ConsumerConfig{Durable: "x", Subjects: []string{"cmd.a.>", "evt.b.>"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.bus.NewConsumer(context.Background(), tt.cfg, h); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := e.bus.NewConsumer(context.Background(), fastConfig("x", "cmd.payment.>"), h, h); err == nil {
		t.Error("two handlers for one type accepted")
	}
}

// A handler that hangs ignoring its context (as good as a crash) is given up on after
// HandlerTimeout; once MaxDeliver deliveries produced no result the message is
// dead-lettered without running the handler again.
func TestHungHandlerDeadLettersAfterMaxDeliver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := fastConfig(durable, "cmd.payment.>")
	cfg.AckWait = 300 * time.Millisecond
	cfg.HandlerTimeout = 100 * time.Millisecond
	cfg.MaxDeliver = 2
	cfg.Concurrency = 4
	release := make(chan struct{})
	var calls atomic.Int32
	c, err := e.bus.NewConsumer(ctx, cfg,
		messaging.Handle(func(context.Context, messaging.Message, *paymentv1.AuthorizePayment) error {
			calls.Add(1)
			<-release
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	stop := run(t, c)
	defer func() { close(release); _ = stop() }()
	if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize()); err != nil {
		t.Fatalf("send: %v", err)
	}
	poll.Until(t, "dead letter", func() bool { return streamMsgs(t, e.js, messaging.DLQStream) == 1 })
	dead := lastMsg(t, e.js, messaging.DLQStream, "dlq.cmd.payment.authorize")
	if got := dead.Header.Get("ce-error"); got != messaging.ErrMaxDeliver.Error() {
		t.Errorf("ce-error = %q, want %q", got, messaging.ErrMaxDeliver)
	}
	if got := dead.Header.Get("x-dlq-deliveries"); got != "3" {
		t.Errorf("x-dlq-deliveries = %q, want 3", got)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want MaxDeliver = 2", n)
	}
	poll.Until(t, "settled", func() bool { return streamMsgs(t, e.js, messaging.CommandStream) == 0 })
}

func TestHandlerPanicIsRetriedThenDeadLettered(t *testing.T) {
	dead, calls := dlqCase(t, func(int) error { panic("nil map") }, sendBad)
	if calls != 3 {
		t.Errorf("handler ran %d times, want MaxDeliver = 3", calls)
	}
	if got := dead.Header.Get("ce-error"); !strings.Contains(got, "panicked: nil map") {
		t.Errorf("ce-error = %q", got)
	}
}

func TestNonCloudEventDeadLetters(t *testing.T) {
	dead, calls := dlqCase(t, func(int) error { return nil }, func(e *env) string {
		data, _ := proto.Marshal(authorize())
		if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "cmd.payment.authorize", Data: data}); err != nil {
			panic(err)
		}
		return ""
	})
	if calls != 0 {
		t.Errorf("handler ran %d times, want 0", calls)
	}
	if got := dead.Header.Get("ce-error"); !strings.Contains(got, "not a CloudEvents") {
		t.Errorf("ce-error = %q", got)
	}
}

// Concurrency bounds the handlers running at once, and every message is handled.
func TestConsumerRunsAtMostConcurrencyHandlers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := fastConfig(durable, "cmd.payment.>")
	cfg.Concurrency = 3
	const sent = 12
	var running, most, handled atomic.Int32
	c, err := e.bus.NewConsumer(ctx, cfg,
		messaging.Handle(func(context.Context, messaging.Message, *paymentv1.AuthorizePayment) error {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			handled.Add(1)
			return nil
		}))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	for range sent {
		if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "", authorize()); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	stop := run(t, c)
	defer stop()
	poll.Until(t, "every command handled", func() bool { return handled.Load() == sent })
	if m := most.Load(); m > int32(cfg.Concurrency) || m < 2 {
		t.Fatalf("%d handlers ran at once at the most, want 2 to Concurrency = %d", m, cfg.Concurrency)
	}
}
