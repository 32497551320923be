package messaging_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

func TestReplies(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		replies := messaging.NewReplies(messaging.NewInbox("test_inbox"), "test-commands", "test_replies")
		for range 2 { // the migration is idempotent
			if err := replies.Migrate(ctx, db.DB); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		ran := 0
		execute := func(id string, fail error) (messaging.Reply, error) {
			t.Helper()
			var reply messaging.Reply
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				var err error
				reply, err = replies.Execute(ctx, tx, id, func(ctx context.Context) (messaging.Reply, error) {
					ran++
					if fail != nil {
						return messaging.Reply{}, fail
					}
					return messaging.Reply{Subject: "evt.test.done", Msg: wrapperspb.String("reply to " + id)}, nil
				})
				return err
			})
			return reply, err
		}

		boom := errors.New("boom")
		if _, err := execute("c1", boom); !errors.Is(err, boom) {
			t.Fatalf("failing handler: err = %v, want boom", err)
		}
		if _, ok, err := replies.Load(ctx, db, "c1"); err != nil || ok {
			t.Fatalf("reply of a rolled-back command: ok = %v, err = %v", ok, err)
		}
		first, err := execute("c1", nil)
		if err != nil {
			t.Fatalf("execute: %v", err)
		}
		again, err := execute("c1", boom) // a redelivery must not run the handler
		if err != nil {
			t.Fatalf("execute again: %v", err)
		}
		if ran != 2 {
			t.Errorf("handler ran %d times, want 2 (one failure, one success)", ran)
		}
		if again.Subject != first.Subject || !proto.Equal(again.Msg, first.Msg) {
			t.Errorf("resent reply = %v %v, want %v %v", again.Subject, again.Msg, first.Subject, first.Msg)
		}
		stored, ok, err := replies.Load(ctx, db, "c1")
		if err != nil || !ok || !proto.Equal(stored.Msg, wrapperspb.String("reply to c1")) {
			t.Errorf("Load = %v, %v, %v", stored, ok, err)
		}

		// A processed command whose reply is gone cannot be answered.
		if _, err := db.ExecContext(ctx, `DELETE FROM test_replies WHERE command_id = $1`, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := execute("c1", nil); !errors.Is(err, messaging.ErrNoStoredReply) {
			t.Errorf("missing reply: err = %v, want ErrNoStoredReply", err)
		}

		if _, err := execute("c2", nil); err != nil {
			t.Fatalf("execute c2: %v", err)
		}
		n, err := replies.Prune(ctx, db.DB, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("prune: %v", err)
		}
		if n != 2 {
			t.Errorf("pruned %d commands, want 2", n)
		}
		if _, ok, err := replies.Load(ctx, db, "c2"); err != nil || ok {
			t.Errorf("reply after prune: ok = %v, err = %v", ok, err)
		}
		if _, err := execute("c2", nil); err != nil || ran != 4 {
			t.Errorf("pruned command not handled as new: ran = %d, err = %v", ran, err)
		}
	})
}

func TestNewRepliesRejectsBadTable(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a table name with SQL in it")
		}
	}()
	messaging.NewReplies(messaging.NewInbox(""), "c", "replies; DROP TABLE x")
}
