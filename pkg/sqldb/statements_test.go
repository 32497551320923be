package sqldb_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// A compiled statement follows its table's name: after the table is dropped and
// another renamed into its place (a read-model rebuild's swap), the same SQL reads
// and writes the new table on every pooled connection, inside transactions and out.
// On SQLite the statements are the connection's cached ones (stmtcache.go); on
// PostgreSQL pgx's statement cache.
func TestCompiledStatementsFollowATableSwap(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		exec(t, db, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
		exec(t, db, `INSERT INTO kv VALUES ('a', 1)`)
		const get, put = `SELECT v FROM kv WHERE k = $1`, `UPDATE kv SET v = $1 WHERE k = $2`

		read := func() int64 {
			t.Helper()
			var v int64
			if err := db.QueryRowContext(ctx, get, "a").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		// Compile the statement on several pooled connections at once before the swap.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if v := read(); v != 1 {
					t.Errorf("before the swap: v = %d, want 1", v)
				}
			})
		}
		wg.Wait()

		exec(t, db, `CREATE TABLE kv_new (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
		exec(t, db, `INSERT INTO kv_new VALUES ('a', 2)`)
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			for _, s := range []string{`DROP TABLE kv`, `ALTER TABLE kv_new RENAME TO kv`} {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("swap: %v", err)
		}

		for range 4 {
			if v := read(); v != 2 {
				t.Fatalf("after the swap: v = %d, want 2 (the new table's)", v)
			}
		}
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, put, 3, "a")
			return err
		}); err != nil {
			t.Fatalf("update in a transaction after the swap: %v", err)
		}
		if v := read(); v != 3 {
			t.Fatalf("after the update: v = %d, want 3", v)
		}
	})
}

// A statement that cannot be compiled yet (its table does not exist) fails with the
// driver's error and is not remembered: once the table exists it runs.
func TestStatementOnAMissingTableRunsOnceItExists(t *testing.T) {
	db := sqltest.Open(t, sqldb.SQLite)
	ctx := context.Background()
	const q = `SELECT COUNT(*) FROM later`
	var n int
	if err := db.QueryRowContext(ctx, q).Scan(&n); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("query on a missing table: %v, want no such table", err)
	}
	exec(t, db, `CREATE TABLE later (id BIGINT)`)
	exec(t, db, `INSERT INTO later VALUES (1)`)
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the table exists: %d, %v", n, err)
	}
}

func exec(t *testing.T, db *sqldb.DB, query string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// SQLite pools are bounded and keep their connections idle up to the bound, so
// concurrent readers reuse connections (and the statements prepared on them) instead
// of opening one per query.
func TestSQLitePoolBound(t *testing.T) {
	db := sqltest.Open(t, sqldb.SQLite)
	if got := db.Stats().MaxOpenConnections; got != sqldb.DefaultSQLiteMaxConns {
		t.Fatalf("pool bound %d, want %d", got, sqldb.DefaultSQLiteMaxConns)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 2 * sqldb.DefaultSQLiteMaxConns {
		wg.Go(func() {
			for range 20 {
				var one int
				if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := db.Stats(); s.MaxIdleClosed != 0 {
		t.Errorf("%d connections closed for want of idle slots, want none", s.MaxIdleClosed)
	}
}
