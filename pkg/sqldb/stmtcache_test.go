package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/poll"
)

// openCaching opens a file SQLite database on one pooled connection, so every call
// below meets the same statement cache.
func openCaching(t *testing.T) (*DB, *sql.Conn) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return db, conn
}

func cachedCount(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	n := -1
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			return fmt.Errorf("connection is %T, not cached", dc)
		}
		n = c.stmts.Len()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustExec(t *testing.T, conn *sql.Conn, query string, args ...any) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// SQL passed as text is compiled once per connection: running it again adds nothing
// to the connection's cache, and the reused statement sees new arguments and rows.
func TestSQLiteCompilesEachStatementOnce(t *testing.T) {
	_, conn := openCaching(t)
	ctx := context.Background()
	mustExec(t, conn, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
	before := cachedCount(t, conn)
	for i := range 50 {
		mustExec(t, conn, `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint("k", i), i)
	}
	var sum, n int64
	for i := range 50 {
		var v int64
		if err := conn.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, fmt.Sprint("k", i)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		sum += v
		n++
	}
	if sum != 49*50/2 || n != 50 {
		t.Fatalf("read back sum %d of %d rows, want %d of 50", sum, n, 49*50/2)
	}
	if got := cachedCount(t, conn) - before; got != 2 {
		t.Fatalf("cache grew by %d statements for 2 distinct SQL texts run 100 times, want 2", got)
	}
}

// A statement whose rows are still open runs again uncached (a lookup inside a loop
// over the same query), and a failed statement is usable again at once.
func TestSQLiteCachedStatementBusyAndFailed(t *testing.T) {
	_, conn := openCaching(t)
	ctx := context.Background()
	mustExec(t, conn, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
	const ins = `INSERT INTO kv (k, v) VALUES ($1, $2)`
	mustExec(t, conn, ins, "a", 1)
	mustExec(t, conn, ins, "b", 2)
	if _, err := conn.ExecContext(ctx, ins, "a", 9); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("duplicate insert: err = %v, want a UNIQUE constraint error", err)
	}
	mustExec(t, conn, ins, "c", 3) // the statement that failed runs again

	const q = `SELECT k, v FROM kv WHERE v >= $1 ORDER BY k`
	rows, err := conn.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		// The same SQL while its rows are open: must not disturb the outer loop.
		inner, err := conn.QueryContext(ctx, q, v)
		if err != nil {
			t.Fatal(err)
		}
		m := 0
		for inner.Next() {
			m++
		}
		inner.Close()
		got = append(got, fmt.Sprintf("%s=%d/%d", k, v, m))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if want := "a=1/3 b=2/2 c=3/1"; strings.Join(got, " ") != want {
		t.Fatalf("nested reads = %q, want %q", strings.Join(got, " "), want)
	}
}

// More distinct statements than the cache holds: the oldest are closed, and every
// statement still answers correctly, including one evicted while its rows were open.
func TestSQLiteStatementCacheEvicts(t *testing.T) {
	_, conn := openCaching(t)
	ctx := context.Background()
	mustExec(t, conn, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
	mustExec(t, conn, `INSERT INTO kv (k, v) VALUES ('a', 1), ('b', 2)`)
	const first = `SELECT v FROM kv ORDER BY k`
	open, err := conn.QueryContext(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	for i := range stmtCacheSize + 10 {
		var v int64
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT v + %d FROM kv WHERE k = 'a'`, i)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != int64(1+i) {
			t.Fatalf("statement %d read %d, want %d", i, v, 1+i)
		}
	}
	if n := cachedCount(t, conn); n != stmtCacheSize {
		t.Fatalf("cache holds %d statements, want its bound %d", n, stmtCacheSize)
	}
	var vs []int64
	for open.Next() {
		var v int64
		if err := open.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vs) != "[1 2]" {
		t.Fatalf("rows of an evicted statement = %v, want [1 2]", vs)
	}
	var v int64
	if err := conn.QueryRowContext(ctx, first).Scan(&v); err != nil || v != 1 {
		t.Fatalf("evicted statement again: %d, %v", v, err)
	}
}

// A transaction's statements run without their context's cancellation (no
// interrupt watcher per statement), yet the transaction still ends with its
// context: the next statement fails and nothing of it is kept. On the same
// connection afterwards, a statement outside a transaction is interrupted again
// when its context ends.
func TestSQLiteTransactionsEndWithTheirContext(t *testing.T) {
	_, conn := openCaching(t)
	mustExec(t, conn, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
	for _, end := range []string{"commit", "rollback", "cancel"} {
		ctx, cancel := context.WithCancel(context.Background())
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, 1)`, end); err != nil {
			t.Fatal(err)
		}
		switch end {
		case "commit":
			err = tx.Commit()
		case "rollback":
			err = tx.Rollback()
		case "cancel":
			cancel()
			if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ('more', 1)`); !errors.Is(err, context.Canceled) {
				t.Fatalf("a statement after the context ended: %v, want context.Canceled", err)
			}
			if err := tx.Commit(); err == nil {
				t.Fatal("a transaction committed after its context ended")
			}
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", end, err)
		}
	}
	// database/sql rolls the cancelled transaction back in its own goroutine.
	poll.Until(t, "only the committed row left", func() bool {
		var keys []string
		rows, err := conn.QueryContext(context.Background(), `SELECT k FROM kv ORDER BY k`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		return strings.Join(keys, ",") == "commit"
	})

	// Counting to 10^8 takes seconds; the context ends it in 50 ms.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var n int64
		done <- conn.QueryRowContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT count(*) FROM c`).Scan(&n)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the long statement finished")
		}
	case <-time.After(time.Minute):
		t.Fatal("a statement outside a transaction was not interrupted when its context ended")
	}
}
