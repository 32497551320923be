package messaging_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
)

// BenchmarkCommandRoundTrip compares a bare JetStream publish (stored and acked by the
// server) with a full command round trip through the bus: the order side sends
// AuthorizePayment, the payment handler publishes PaymentAuthorized, and the order
// side's event consumer receives it. Both on one embedded server.
func BenchmarkCommandRoundTrip(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	data, err := proto.Marshal(authorize())
	if err != nil {
		b.Fatal(err)
	}

	b.Run("jetstream-publish", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "evt.bench.raw", Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("send-event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.bus.PublishEvent(ctx, "evt.bench.raw", "", authorize()); err != nil {
				b.Fatal(err)
			}
		}
	})

	// The same round trip in bare JetStream: publish, pull, ack, publish the reply,
	// pull it, ack. The floor under what the bus adds (headers, protobuf, spans,
	// resilience, typed dispatch, confirmed acks).
	b.Run("jetstream-round-trip", func(b *testing.B) {
		rawConsumer := func(stream, durable, subject string) jetstream.MessagesContext {
			c, err := e.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
				Durable: durable, FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
			})
			if err != nil {
				b.Fatal(err)
			}
			it, err := c.Messages(jetstream.PullMaxMessages(16))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(it.Stop)
			return it
		}
		// Same topology as the bus: request on the work queue, reply on the event stream.
		requests := rawConsumer(messaging.CommandStream, "raw-requests", "cmd.rawbench.request")
		replies := rawConsumer(messaging.EventStream, "raw-replies", "evt.rawbench.reply")
		go func() {
			for {
				m, err := requests.Next()
				if err != nil {
					return
				}
				_ = m.Ack()
				_, _ = e.js.PublishMsg(ctx, &nats.Msg{Subject: "evt.rawbench.reply", Data: m.Data()})
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "cmd.rawbench.request", Data: data}); err != nil {
				b.Fatal(err)
			}
			m, err := replies.Next()
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Ack()
		}
	})

	// Payment side: its own connection and bus, as in another process.
	_, payments := e.conn(b)
	pc, err := payments.NewConsumer(ctx, messaging.ConsumerConfig{Durable: "payment-commands", Subjects: []string{"cmd.payment.>"}, Concurrency: 16},
		messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
			_, err := payments.PublishEvent(ctx, "evt.payment.authorized", "", &paymentv1.PaymentAuthorized{
				OrderId: cmd.GetOrderId(), PaymentId: "pay-1", Amount: cmd.GetAmount(),
			}, messaging.CausedBy(m))
			return err
		}))
	if err != nil {
		b.Fatal(err)
	}
	run(b, pc)

	// Order side: waits for the reply caused by each command it sent.
	var waiting sync.Map // command id -> chan struct{}
	oc, err := e.bus.NewConsumer(ctx, messaging.ConsumerConfig{Durable: "order-payment-events", Subjects: []string{"evt.payment.>"}, Concurrency: 16},
		messaging.Handle(func(ctx context.Context, m messaging.Message, _ *paymentv1.PaymentAuthorized) error {
			if ch, ok := waiting.LoadAndDelete(m.CausationID); ok {
				close(ch.(chan struct{}))
			}
			return nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	run(b, oc)

	roundTrip := func(b *testing.B, id string) {
		done := make(chan struct{})
		waiting.Store(id, done)
		if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", id, authorize(), messaging.WithSubject(orderID)); err != nil {
			b.Error(err)
			return
		}
		<-done
	}
	var seq struct {
		sync.Mutex
		n int
	}
	next := func() string {
		seq.Lock()
		defer seq.Unlock()
		seq.n++
		return "bench-" + strconv.Itoa(seq.n)
	}

	b.Run("command-round-trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			roundTrip(b, next())
		}
	})
	b.Run("command-round-trip-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				roundTrip(b, next())
			}
		})
	})
}
