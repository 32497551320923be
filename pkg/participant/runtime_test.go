package participant_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// Every decision of a batch runs in the same transaction, and each command gets its
// reply, with the reply id derived from the command id and the order id as subject.
func TestBatchIsOneTransaction(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		c := newCharger()
		rt := newRuntime(t, db, c)
		var batch []*messaging.Delivery
		for i := range 5 {
			batch = append(batch, delivery(t, fmt.Sprint("cmd-", i), fmt.Sprint("order-", i)))
		}
		outs := rt.HandleBatch(context.Background(), batch)
		tx := c.tx("order-0")
		for i, o := range outs {
			if o.Err != nil {
				t.Fatalf("outcome %d: %v", i, o.Err)
			}
			if o.ReplyID != replyID(batch[i].ID) || o.Subject != fmt.Sprint("order-", i) || o.Reply.Subject != replySubject {
				t.Errorf("outcome %d = %+v", i, o)
			}
			if got := c.tx(fmt.Sprint("order-", i)); got != tx {
				t.Errorf("order-%d decided in another transaction", i)
			}
		}
		if got := charges(t, db); len(got) != 5 {
			t.Errorf("charges = %v, want 5 orders charged once", got)
		}
	})
}

// A decision that fails rolls the batch back; the batch is decided again one command
// per transaction, so the failing command fails alone and the others take effect once.
func TestFailingDecisionFailsAlone(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		c := newCharger()
		rt := newRuntime(t, db, c)
		batch := []*messaging.Delivery{
			delivery(t, "cmd-a", "order-a"),
			delivery(t, "cmd-p", poison),
			delivery(t, "cmd-b", "order-b"),
		}
		outs := rt.HandleBatch(context.Background(), batch)
		if outs[0].Err != nil || outs[2].Err != nil || !errors.Is(outs[1].Err, errPoison) {
			t.Fatalf("outcomes = %+v", outs)
		}
		if c.tx("order-a") == c.tx("order-b") {
			t.Error("after the failure, order-a and order-b still shared a transaction")
		}
		got := charges(t, db)
		if len(got) != 2 || got["order-a"] != 1 || got["order-b"] != 1 {
			t.Errorf("charges = %v, want order-a and order-b once", got)
		}
		// The poisoned command was not recorded: its redelivery is decided again.
		before := c.decided.Load()
		if outs := rt.HandleBatch(context.Background(), batch[1:2]); !errors.Is(outs[0].Err, errPoison) || c.decided.Load() == before {
			t.Errorf("redelivered poison: %+v, decided again: %v", outs, c.decided.Load() != before)
		}
	})
}

// The same command twice in one batch (a redelivery next to the original) takes
// effect once; both get the same reply.
func TestDuplicateInOneBatch(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		c := newCharger()
		rt := newRuntime(t, db, c)
		outs := rt.HandleBatch(context.Background(), []*messaging.Delivery{
			delivery(t, "cmd-1", "order-1"), delivery(t, "cmd-1", "order-1"),
		})
		if outs[0].Err != nil || outs[1].Err != nil || outs[0].ReplyID != outs[1].ReplyID || !proto.Equal(outs[0].Reply.Msg, outs[1].Reply.Msg) {
			t.Fatalf("outcomes = %+v", outs)
		}
		if got := charges(t, db); got["order-1"] != 1 {
			t.Errorf("charges = %v, want order-1 once", got)
		}
	})
}

// A command answered before is answered again from the stored reply, without being
// prepared (no second call to the outside world) or decided.
func TestRedeliveryGetsStoredReply(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		c := newCharger()
		rt := newRuntime(t, db, c)
		first := rt.HandleBatch(context.Background(), []*messaging.Delivery{delivery(t, "cmd-1", "order-1")})
		prepared, decided := c.prepared.Load(), c.decided.Load()
		redelivered := delivery(t, "cmd-1", "order-1")
		redelivered.Attempt = 2
		again := rt.HandleBatch(context.Background(), []*messaging.Delivery{redelivered, delivery(t, "cmd-2", "order-2")})
		if again[0].Err != nil || again[0].ReplyID != first[0].ReplyID || !proto.Equal(again[0].Reply.Msg, first[0].Reply.Msg) || again[0].Subject != "order-1" {
			t.Fatalf("again = %+v, first = %+v", again[0], first[0])
		}
		if c.prepared.Load() != prepared+1 || c.decided.Load() != decided+1 {
			t.Errorf("prepared %d, decided %d more times; want once each, for cmd-2 only", c.prepared.Load()-prepared, c.decided.Load()-decided)
		}
		if got := charges(t, db); got["order-1"] != 1 || got["order-2"] != 1 {
			t.Errorf("charges = %v", got)
		}

		// The same command sent anew (a first delivery of an answered command: the
		// saga sent it again after the stream forgot its id) is prepared, since only
		// redeliveries are looked up first, but takes no effect: the inbox answers it.
		prepared, decided = c.prepared.Load(), c.decided.Load()
		resent := rt.HandleBatch(context.Background(), []*messaging.Delivery{delivery(t, "cmd-1", "order-1")})
		if resent[0].Err != nil || !proto.Equal(resent[0].Reply.Msg, first[0].Reply.Msg) {
			t.Fatalf("resent = %+v, first = %+v", resent[0], first[0])
		}
		if c.prepared.Load() != prepared+1 || c.decided.Load() != decided {
			t.Errorf("resent command prepared %d, decided %d more times; want 1, 0", c.prepared.Load()-prepared, c.decided.Load()-decided)
		}
		if got := charges(t, db); got["order-1"] != 1 {
			t.Errorf("charges after the resend = %v, want order-1 once", got)
		}
	})
}

// Execute decides a command once until its record is pruned; migrating twice is
// harmless.
func TestExecuteOncePerCommandUntilPruned(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		c := newCharger()
		rt := newRuntime(t, db, c)
		newRuntime(t, db, c)
		d := func(ctx context.Context, tx *sql.Tx) (messaging.Reply, error) {
			dec, err := c.handle(ctx, messaging.Message{}, charge("order-1"))
			if err != nil {
				return messaging.Reply{}, err
			}
			return dec(ctx, tx)
		}
		for range 3 {
			if _, err := rt.Execute(ctx, "cmd-1", d); err != nil {
				t.Fatal(err)
			}
		}
		if got := charges(t, db); got["order-1"] != 1 {
			t.Fatalf("charges = %v, want once", got)
		}
		if n, err := rt.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("Prune of nothing old = %d, %v", n, err)
		}
		if n, err := rt.Prune(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v", n, err)
		}
		if _, err := rt.Execute(ctx, "cmd-1", d); err != nil {
			t.Fatal(err)
		}
		if got := charges(t, db); got["order-1"] != 2 {
			t.Fatalf("charges after prune = %v, want a second charge", got)
		}
	})
}

var _ participant.Decide = (func(context.Context, *sql.Tx) (messaging.Reply, error))(nil)
