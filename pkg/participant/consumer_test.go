package participant_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// shop is an embedded server with the streams declared and a sender of commands.
type shop struct {
	srv    *natsembed.Server
	js     jetstream.JetStream
	sender *messaging.Bus
}

func newShop(t testing.TB) *shop {
	t.Helper()
	srv, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := messaging.DeclareStreams(context.Background(), js, messaging.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return &shop{srv: srv, js: js, sender: messaging.New(js, "order")}
}

func (s *shop) send(t testing.TB, id, orderID string) {
	t.Helper()
	if _, err := s.sender.SendCommand(context.Background(), commandSubject, id, charge(orderID)); err != nil {
		t.Fatal(err)
	}
}

// conn is the connection of one participant process.
func (s *shop) conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := s.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// consume runs a batch consumer of the test participant on nc until the test ends or
// the consumer stops by itself; done is closed then.
func (s *shop) consume(t testing.TB, nc *nats.Conn, batchSize int, fn messaging.BatchFunc, types []string) (done chan struct{}) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := messaging.New(js, name).NewBatchConsumer(ctx, messaging.BatchConsumerConfig{
		ConsumerConfig: messaging.ConsumerConfig{
			Durable: name + "-commands", Subjects: []string{"cmd.ptest.>"},
			AckWait: time.Second, MaxDeliver: 3, Backoff: []time.Duration{20 * time.Millisecond},
		},
		BatchSize: batchSize,
		Types:     types,
	}, fn)
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() {
		defer close(done)
		_ = cons.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return done
}

// msgs counts the messages of a stream.
func (s *shop) msgs(t testing.TB, stream string) int {
	t.Helper()
	st, err := s.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}

// unsettled counts the commands the participant has not acknowledged yet.
func (s *shop) unsettled(t testing.TB) int {
	t.Helper()
	c, err := s.js.Consumer(context.Background(), messaging.CommandStream, name+"-commands")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending + int(info.NumPending)
}

// The process dies after its batch committed and before any reply went out: the
// commands come back to the restarted process, which publishes the stored reply once,
// without preparing or deciding again.
func TestCrashAfterCommitBeforePublish(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		s := newShop(t)
		c := newCharger()
		rt := newRuntime(t, db, c)

		first := s.conn(t)
		crashed := s.consume(t, first, 64, func(ctx context.Context, batch []*messaging.Delivery) []messaging.Outcome {
			outs := rt.HandleBatch(ctx, batch)
			first.Close() // the crash: committed, nothing published or acknowledged
			return outs
		}, rt.Types())
		s.send(t, "cmd-1", "order-1")
		<-crashed
		if n := s.msgs(t, messaging.EventStream); n != 0 {
			t.Fatalf("%d replies before the restart", n)
		}

		s.consume(t, s.conn(t), 64, rt.HandleBatch, rt.Types())
		poll.NoError(t, func() error {
			if err := want(s.msgs(t, messaging.EventStream), 1, "replies"); err != nil {
				return err
			}
			return want(s.unsettled(t), 0, "unsettled commands")
		})
		if got := charges(t, db); got["order-1"] != 1 || c.prepared.Load() != 1 || c.decided.Load() != 1 {
			t.Errorf("charges %v, prepared %d, decided %d; want 1 each", got, c.prepared.Load(), c.decided.Load())
		}

		// The same command delivered again after its reply went out (an ack lost): the
		// reply is published again under the same id, and JetStream keeps one.
		h := nats.Header{}
		for k, v := range map[string]string{
			messaging.HeaderSpecVersion: messaging.SpecVersion, messaging.HeaderID: "cmd-1",
			messaging.HeaderType: "eventshop.payment.v1.AuthorizePayment", jetstream.MsgIDHeader: "cmd-1-again",
		} {
			h.Set(k, v)
		}
		d := delivery(t, "cmd-1", "order-1")
		if _, err := s.js.PublishMsg(context.Background(), &nats.Msg{Subject: commandSubject, Header: h, Data: d.Data}); err != nil {
			t.Fatal(err)
		}
		poll.NoError(t, func() error { return want(s.unsettled(t), 0, "unsettled commands") })
		if n := s.msgs(t, messaging.EventStream); n != 1 || charges(t, db)["order-1"] != 1 {
			t.Errorf("after the redelivery: %d replies, charges %v; want 1 and 1", n, charges(t, db))
		}
	})
}

// A command is acknowledged only after its batch committed: while its decision holds
// the transaction open, it stays unacknowledged and unanswered.
func TestAckOnlyAfterCommit(t *testing.T) {
	s := newShop(t)
	db := sqltest.Open(t, sqldb.SQLite)
	c := newCharger()
	c.gate = make(chan struct{})
	rt := newRuntime(t, db, c)
	s.consume(t, s.conn(t), 64, rt.HandleBatch, rt.Types())

	s.send(t, "cmd-1", "order-1")
	poll.NoError(t, func() error { return want(int(c.decided.Load()), 1, "decisions") })
	if n, u := s.msgs(t, messaging.EventStream), s.unsettled(t); n != 0 || u != 1 {
		t.Fatalf("inside the transaction: %d replies, %d unsettled; want 0 and 1", n, u)
	}
	close(c.gate)
	poll.NoError(t, func() error {
		if err := want(s.unsettled(t), 0, "unsettled commands"); err != nil {
			return err
		}
		return want(s.msgs(t, messaging.EventStream), 1, "replies")
	})
}

// A command whose decision always fails is retried and dead-lettered; the commands
// batched with it are answered once.
func TestPoisonIsDeadLetteredAlone(t *testing.T) {
	s := newShop(t)
	db := sqltest.Open(t, sqldb.SQLite)
	c := newCharger()
	rt := newRuntime(t, db, c)
	for i := range 4 {
		s.send(t, fmt.Sprint("cmd-", i), fmt.Sprint("order-", i))
	}
	s.send(t, "cmd-poison", poison)
	s.consume(t, s.conn(t), 64, rt.HandleBatch, rt.Types())
	poll.NoError(t, func() error {
		if err := want(s.msgs(t, messaging.DLQStream), 1, "dead letters"); err != nil {
			return err
		}
		if err := want(s.msgs(t, messaging.EventStream), 4, "replies"); err != nil {
			return err
		}
		return want(s.unsettled(t), 0, "unsettled commands")
	})
	got := charges(t, db)
	for i := range 4 {
		if got[fmt.Sprint("order-", i)] != 1 {
			t.Errorf("charges = %v, want every good order once", got)
		}
	}
}
