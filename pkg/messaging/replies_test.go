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
		replies := messaging.NewReplies("test_replies")
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

		// Twice in one transaction (a redelivery beside the original in one batch):
		// the second sees the first's reply before the commit.
		twice := 0
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			for range 2 {
				if _, err := replies.Execute(ctx, tx, "c3", func(ctx context.Context) (messaging.Reply, error) {
					twice++
					return messaging.Reply{Subject: "evt.test.done", Msg: wrapperspb.String("reply to c3")}, nil
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || twice != 1 {
			t.Fatalf("one command twice in one transaction: ran %d times, err = %v", twice, err)
		}

		if _, err := execute("c2", nil); err != nil {
			t.Fatalf("execute c2: %v", err)
		}
		n, err := replies.Prune(ctx, db.DB, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("prune: %v", err)
		}
		if n != 3 {
			t.Errorf("pruned %d commands, want 3", n)
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
	messaging.NewReplies("replies; DROP TABLE x")
}

// Two transactions executing one command at once (PostgreSQL: two instances handed
// the same redelivered command) both run the handler, but only the first to commit
// keeps its work; the other fails on the replies table's key, and run again it gets
// the first one's reply. (SQLite lets one writer in at a time, so there the second
// simply finds the reply.)
func TestRepliesConcurrentExecutionKeepsOne(t *testing.T) {
	db := sqltest.Open(t, sqldb.Postgres)
	ctx := context.Background()
	replies := messaging.NewReplies("race_replies")
	if err := replies.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE race_effects (n TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	run := func(tx *sql.Tx, who string) (messaging.Reply, error) {
		return replies.Execute(ctx, tx, "c1", func(ctx context.Context) (messaging.Reply, error) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO race_effects VALUES ($1)`, who); err != nil {
				return messaging.Reply{}, err
			}
			return messaging.Reply{Subject: "evt.test.done", Msg: wrapperspb.String(who)}, nil
		})
	}
	tx1, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx2, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(tx1, "first"); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { // blocks on tx1's key until tx1 commits
		_, err := run(tx2, "second")
		second <- err
	}()
	for waiting := 0; waiting == 0; {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err == nil {
		t.Fatal("second execution stored its reply too")
	}
	_ = tx2.Rollback()

	var again messaging.Reply
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		again, err = run(tx, "third")
		return err
	})
	if err != nil || !proto.Equal(again.Msg, wrapperspb.String("first")) {
		t.Fatalf("run again = %v, %v; want the first reply", again.Msg, err)
	}
	var effects []string
	rows, err := db.QueryContext(ctx, `SELECT n FROM race_effects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		effects = append(effects, n)
	}
	if len(effects) != 1 || effects[0] != "first" {
		t.Errorf("effects = %v, want [first]", effects)
	}
}
