package participant_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/sqldb"
)

// The participant under test: "charge" commands (AuthorizePayment) add one row per
// order to charges, and are answered with PaymentAuthorized on evt.ptest.charged.
const (
	name           = "ptest"
	commandSubject = "cmd.ptest.charge"
	replySubject   = "evt.ptest.charged"
	// poison is an order whose decision always fails.
	poison = "order-poison"
)

var schema = fstest.MapFS{"001_charges.sql": {Data: []byte(
	`CREATE TABLE charges (order_id TEXT PRIMARY KEY, n INTEGER NOT NULL)`)}}

var errPoison = errors.New("poisoned decision")

func replyID(commandID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(commandID)).String()
}

// charger is the participant: it counts what it prepares and decides, and records the
// transaction each decision ran in.
type charger struct {
	prepared atomic.Int64
	decided  atomic.Int64
	mu       sync.Mutex
	txs      map[string]*sql.Tx // order id -> transaction of its last decision
	// gate, when set, is waited on by every decision (inside the transaction).
	gate chan struct{}
}

func newCharger() *charger { return &charger{txs: map[string]*sql.Tx{}} }

func (c *charger) handle(_ context.Context, _ messaging.Message, cmd *paymentv1.AuthorizePayment) (participant.Decision[*sql.Tx], error) {
	c.prepared.Add(1)
	return func(ctx context.Context, tx *sql.Tx) (messaging.Reply, error) {
		c.decided.Add(1)
		c.mu.Lock()
		c.txs[cmd.GetOrderId()] = tx
		c.mu.Unlock()
		if c.gate != nil {
			<-c.gate
		}
		if cmd.GetOrderId() == poison {
			return messaging.Reply{}, errPoison
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO charges (order_id, n) VALUES ($1, 1)
			ON CONFLICT (order_id) DO UPDATE SET n = charges.n + 1`, cmd.GetOrderId()); err != nil {
			return messaging.Reply{}, err
		}
		return messaging.Reply{Subject: replySubject, Msg: &paymentv1.PaymentAuthorized{
			OrderId: cmd.GetOrderId(), PaymentId: "pay-" + cmd.GetOrderId(), Amount: cmd.GetAmount(),
		}}, nil
	}, nil
}

func (c *charger) tx(orderID string) *sql.Tx {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.txs[orderID]
}

func rawTx(tx *sql.Tx) *sql.Tx { return tx }

// newRuntime migrates db for the test participant and returns its runtime.
func newRuntime(t testing.TB, db *sqldb.DB, c *charger) *participant.Runtime {
	t.Helper()
	replies, err := participant.Migrate(context.Background(), db, name, schema)
	if err != nil {
		t.Fatal(err)
	}
	return participant.NewRuntime(db, replies, replyID, participant.Handle(rawTx, c.handle))
}

func charge(orderID string) *paymentv1.AuthorizePayment {
	return &paymentv1.AuthorizePayment{OrderId: orderID, PaymentToken: "tok_visa",
		Amount: &commonv1.Money{CurrencyCode: "USD", MinorUnits: 1000}}
}

// delivery builds a delivered command by hand, as the consumer would hand it over.
func delivery(t testing.TB, id, orderID string) *messaging.Delivery {
	t.Helper()
	data, err := proto.Marshal(charge(orderID))
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Delivery{
		Message: messaging.Message{ID: id, Type: "eventshop.payment.v1.AuthorizePayment", Destination: commandSubject, Attempt: 1},
		Data:    data,
	}
}

// charges returns how often each order was charged.
func charges(t testing.TB, db *sqldb.DB) map[string]int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT order_id, n FROM charges`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond until it returns nil, failing with its last error after 20s.
func want(got, want int, what string) error {
	if got != want {
		return fmt.Errorf("%s = %d, want %d", what, got, want)
	}
	return nil
}
