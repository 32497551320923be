package messaging_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/messaging"
)

func TestInbox(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, dialect)
			inbox := messaging.NewInbox("")
			for range 2 { // the migration is idempotent
				if err := inbox.Migrate(ctx, db); err != nil {
					t.Fatalf("migrate: %v", err)
				}
			}
			once := func(consumer, id string, commit bool) bool {
				t.Helper()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatalf("begin: %v", err)
				}
				first, err := inbox.Once(ctx, tx, consumer, id)
				if err != nil {
					t.Fatalf("once: %v", err)
				}
				if commit {
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					t.Fatalf("end tx: %v", err)
				}
				return first
			}
			if !once("payment-commands", "m1", false) {
				t.Error("first sight not first")
			}
			if !once("payment-commands", "m1", true) {
				t.Error("rolled-back record still counted")
			}
			if once("payment-commands", "m1", true) {
				t.Error("committed record not remembered")
			}
			if !once("shipping-events", "m1", true) {
				t.Error("another consumer shares the record")
			}

			// Process: fn runs once; its failure leaves no record.
			ran := 0
			fn := func(ctx context.Context, tx *sql.Tx) error { ran++; return nil }
			boom := errors.New("boom")
			if _, err := inbox.Process(ctx, db, "c", "m2", func(context.Context, *sql.Tx) error { return boom }); !errors.Is(err, boom) {
				t.Errorf("process err = %v, want boom", err)
			}
			for range 2 {
				if _, err := inbox.Process(ctx, db, "c", "m2", fn); err != nil {
					t.Fatalf("process: %v", err)
				}
			}
			if ran != 1 {
				t.Errorf("fn ran %d times, want 1", ran)
			}

			n, err := inbox.Prune(ctx, db, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatalf("prune: %v", err)
			}
			if n != 3 {
				t.Errorf("pruned %d records, want 3", n)
			}
			if n, _ := inbox.Prune(ctx, db, time.Now().Add(-time.Hour)); n != 0 {
				t.Errorf("pruned %d fresh records", n)
			}
		})
	}
}

func TestInboxRejectsOddTableName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a table name with SQL in it")
		}
	}()
	messaging.NewInbox("x; DROP TABLE y")
}
