package participant_test

import (
	"context"
	"database/sql"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// The replies table is a versioned migration of the runtime's: a new database gets
// it from there, and a database whose replies table an earlier release created
// outside any migration keeps it, with its replies, and records the migration.
func TestRepliesTableIsMigrated(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		// An earlier release's database: the table made directly, one reply in it.
		old := messaging.NewReplies(name + "_replies")
		if err := old.Migrate(ctx, db.DB); err != nil {
			t.Fatal(err)
		}
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := old.Execute(ctx, tx, "cmd-old", func(context.Context) (messaging.Reply, error) {
				return messaging.Reply{Subject: "evt.test.done", Msg: wrapperspb.String("kept")}, nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		for range 2 { // and again: nothing more happens
			replies, err := participant.Migrate(ctx, db, name, schema)
			if err != nil {
				t.Fatalf("migrate: %v", err)
			}
			got, ok, err := replies.Load(ctx, db, "cmd-old")
			if err != nil || !ok || !proto.Equal(got.Msg, wrapperspb.String("kept")) {
				t.Fatalf("reply of the earlier release after the migration: %v %v %v", got.Msg, ok, err)
			}
		}
		var versions int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+name+`_runtime_migrations WHERE version = 1`).Scan(&versions); err != nil || versions != 1 {
			t.Fatalf("runtime migration recorded %d times, %v", versions, err)
		}
	})
}
