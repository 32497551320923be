package messaging_test

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/poll"
)

const durable = "payment-commands"

// paymentsDB is a payment service's state: how often each order was authorized.
func paymentsDB(t *testing.T, dialect string) (*sql.DB, *messaging.Inbox) {
	t.Helper()
	db := openDB(t, dialect)
	inbox := messaging.NewInbox("")
	if err := inbox.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := db.Exec(`CREATE TABLE authorizations (order_id TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return db, inbox
}

// authorizeOnce is the state change: not idempotent by itself, hence the inbox.
func authorizeOnce(ctx context.Context, tx *sql.Tx, orderID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO authorizations (order_id, n) VALUES ($1, 1)
ON CONFLICT (order_id) DO UPDATE SET n = authorizations.n + 1`, orderID)
	return err
}

func assertState(t *testing.T, db *sql.DB) {
	t.Helper()
	var rows, n, seen int
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(n), 0) FROM authorizations`).Scan(&rows, &n); err != nil {
		t.Fatalf("query: %v", err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM processed_messages`).Scan(&seen); err != nil {
		t.Fatalf("query: %v", err)
	}
	if rows != 1 || n != 1 || seen != 1 {
		t.Errorf("rows = %d, authorizations = %d, inbox records = %d; want 1, 1, 1", rows, n, seen)
	}
}

func crashConfig() messaging.ConsumerConfig {
	cfg := fastConfig(durable, "cmd.payment.>")
	cfg.AckWait = 500 * time.Millisecond // how soon the dead process's message comes back
	return cfg
}

// The process dies while its handler holds an uncommitted transaction: the work is
// rolled back, the message comes back to a new process after AckWait and is
// processed exactly once.
func TestCrashMidHandlerProcessesOnce(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			db, inbox := paymentsDB(t, dialect)
			e := newEnv(t)
			ctx := context.Background()

			inHandler := make(chan struct{})
			committed := make(chan int, 10)
			handler := messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				first, err := inbox.Once(ctx, tx, durable, m.ID)
				if err != nil {
					return err
				}
				if first {
					if err := authorizeOnce(ctx, tx, cmd.GetOrderId()); err != nil {
						return err
					}
				}
				if m.Attempt == 1 {
					close(inHandler)
					<-ctx.Done() // hangs here until the process dies
					return ctx.Err()
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				committed <- m.Attempt
				return nil
			})

			nc1, bus1 := e.conn(t)
			c1, err := bus1.NewConsumer(ctx, crashConfig(), handler)
			if err != nil {
				t.Fatalf("consumer: %v", err)
			}
			stop1 := run(t, c1)
			if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "saga-1:authorize:1", authorize()); err != nil {
				t.Fatalf("send: %v", err)
			}
			receive(t, inHandler, "first delivery")
			nc1.Close() // the process dies: nothing of it reaches the server any more
			_ = stop1() // its goroutines unwind; the open transaction rolls back

			_, bus2 := e.conn(t)
			c2, err := bus2.NewConsumer(ctx, crashConfig(), handler)
			if err != nil {
				t.Fatalf("consumer: %v", err)
			}
			run(t, c2)
			if attempt := receive(t, committed, "redelivery"); attempt < 2 {
				t.Errorf("committed on attempt %d, want a redelivery", attempt)
			}
			poll.Until(t, "ack", func() bool {
				return streamMsgs(t, e.js, messaging.CommandStream) == 0 && settled(t, e.js, messaging.CommandStream, durable)
			})
			assertState(t, db)
		})
	}
}

// The process dies after committing but before its ack reached the server: the
// message comes back, the inbox says it was done, and it is acknowledged unprocessed.
func TestCrashAfterCommitBeforeAck(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			db, inbox := paymentsDB(t, dialect)
			e := newEnv(t)
			ctx := context.Background()

			var ran, deliveries atomic.Int32
			var dying atomic.Pointer[nats.Conn]
			handled := make(chan bool, 10)
			handler := messaging.Handle(func(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) error {
				deliveries.Add(1)
				did, err := inbox.Process(ctx, db, durable, m.ID, func(ctx context.Context, tx *sql.Tx) error {
					ran.Add(1)
					return authorizeOnce(ctx, tx, cmd.GetOrderId())
				})
				if err != nil {
					return err
				}
				if nc := dying.Load(); nc != nil && m.Attempt == 1 {
					nc.Close() // the process dies between commit and ack
				}
				handled <- did
				return nil
			})

			nc1, bus1 := e.conn(t)
			dying.Store(nc1)
			c1, err := bus1.NewConsumer(ctx, crashConfig(), handler)
			if err != nil {
				t.Fatalf("consumer: %v", err)
			}
			stop1 := run(t, c1)
			if _, err := e.bus.SendCommand(ctx, "cmd.payment.authorize", "saga-1:authorize:1", authorize()); err != nil {
				t.Fatalf("send: %v", err)
			}
			if !receive(t, handled, "first delivery") {
				t.Fatal("first delivery did not do the work")
			}
			_ = stop1()

			_, bus2 := e.conn(t)
			c2, err := bus2.NewConsumer(ctx, crashConfig(), handler)
			if err != nil {
				t.Fatalf("consumer: %v", err)
			}
			run(t, c2)
			if receive(t, handled, "redelivery") {
				t.Error("redelivery did the work again")
			}
			poll.Until(t, "ack", func() bool {
				return streamMsgs(t, e.js, messaging.CommandStream) == 0 && settled(t, e.js, messaging.CommandStream, durable)
			})
			if ran.Load() != 1 || deliveries.Load() != 2 {
				t.Errorf("work ran %d times in %d deliveries, want 1 in 2", ran.Load(), deliveries.Load())
			}
			assertState(t, db)
		})
	}
}
