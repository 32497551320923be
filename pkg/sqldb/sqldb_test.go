package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

func TestOpenDialects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		dsn     string
		want    sqldb.Dialect
		wantErr error
	}{
		{dsn: filepath.Join(dir, "a.db"), want: sqldb.SQLite},
		{dsn: "sqlite:" + filepath.Join(dir, "b.db"), want: sqldb.SQLite},
		{dsn: "sqlite://" + filepath.Join(dir, "c.db"), want: sqldb.SQLite},
		{dsn: "file:" + filepath.Join(dir, "d.db") + "?_pragma=busy_timeout(50)", want: sqldb.SQLite},
		{dsn: ":memory:", want: sqldb.SQLite},
		{dsn: "", wantErr: sqldb.ErrInvalidDSN},
		{dsn: "sqlite:", wantErr: sqldb.ErrInvalidDSN},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			db, err := sqldb.Open(ctx, tt.dsn)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open(%q) error = %v, want %v", tt.dsn, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer db.Close()
			if db.Dialect != tt.want {
				t.Errorf("dialect = %s, want %s", db.Dialect, tt.want)
			}
			if tt.dsn == ":memory:" {
				return
			}
			var mode string
			if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
			var fk int
			if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
				t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
			}
		})
	}
}

// The same SQL, $N placeholders in any order and repeated, runs on both dialects.
func TestPlaceholdersAndUpsert(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, a BIGINT NOT NULL, b TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		upsert := `INSERT INTO kv (k, a, b) VALUES ($2, $1, $3) ON CONFLICT (k) DO UPDATE SET a = kv.a + excluded.a, b = $3`
		for i := range 3 {
			if _, err := db.ExecContext(ctx, upsert, int64(10), "x", fmt.Sprint("v", i)); err != nil {
				t.Fatal(err)
			}
		}
		var a int64
		var b string
		if err := db.QueryRowContext(ctx, `SELECT a, b FROM kv WHERE k = $1 AND (a > $2 OR a = $2)`, "x", int64(30)).Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		if a != 30 || b != "v2" {
			t.Errorf("got (%d, %q), want (30, v2)", a, b)
		}
	})
}

func TestInTx(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE n (v BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		insert := func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO n (v) VALUES (1)`)
			return err
		}
		boom := errors.New("boom")
		if err := db.InTx(ctx, func(tx *sql.Tx) error { _ = insert(tx); return boom }); !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic was swallowed")
				}
			}()
			_ = db.InTx(ctx, func(tx *sql.Tx) error { _ = insert(tx); panic("boom") })
		}()
		if err := db.InTx(ctx, insert); err != nil {
			t.Fatal(err)
		}
		if got := count(t, db, "n"); got != 1 {
			t.Errorf("rows = %d, want 1 (error and panic must roll back)", got)
		}
	})
}

// Read-then-write transactions from many goroutines all succeed: on SQLite the
// immediate write lock plus busy_timeout serialize them. With _txlock=deferred this
// test fails about one transaction in five with SQLITE_BUSY_SNAPSHOT (517), which no
// busy_timeout retries, so a pool of connections needs no single-writer limit.
func TestConcurrentWriteTransactions(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE c (id BIGINT PRIMARY KEY, v BIGINT NOT NULL); INSERT INTO c VALUES (1, 0)`); err != nil {
			t.Fatal(err)
		}
		read := `SELECT v FROM c WHERE id = 1`
		if db.Dialect == sqldb.Postgres {
			read += ` FOR UPDATE` // READ COMMITTED needs the row lock; SQLite's write lock is the whole database
		}
		const workers, each = 32, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Go(func() {
				for range each {
					errs <- db.InTx(ctx, func(tx *sql.Tx) error {
						var v int64
						for range 10 { // widen the window between the read and the write
							if err := tx.QueryRowContext(ctx, read).Scan(&v); err != nil {
								return err
							}
						}
						_, err := tx.ExecContext(ctx, `UPDATE c SET v = $1 WHERE id = 1`, v+1)
						return err
					})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var v int64
		if err := db.QueryRowContext(ctx, `SELECT v FROM c WHERE id = 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != workers*each {
			t.Errorf("counter = %d, want %d (lost updates)", v, workers*each)
		}
	})
}

func TestMigrate(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		fsys := fstest.MapFS{
			"001_create.sql": {Data: []byte("CREATE TABLE a (id BIGINT PRIMARY KEY);\nCREATE TABLE b (id BIGINT PRIMARY KEY);")},
			"002_seed.sql":   {Data: []byte("INSERT INTO a (id) VALUES (1);")},
			"README.md":      {Data: []byte("not a migration")},
		}
		for range 2 {
			if err := sqldb.Migrate(ctx, db, fsys, "schema_migrations"); err != nil {
				t.Fatal(err)
			}
		}
		if got := count(t, db, "a"); got != 1 {
			t.Errorf("a has %d rows, want 1: a migration ran twice or not at all", got)
		}
		if got := count(t, db, "schema_migrations"); got != 2 {
			t.Errorf("recorded %d migrations, want 2", got)
		}

		// A failing migration leaves neither its changes nor its record.
		fsys["003_bad.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO a (id) VALUES (2); INSERT INTO nowhere VALUES (1);")}
		if err := sqldb.Migrate(ctx, db, fsys, "schema_migrations"); err == nil {
			t.Fatal("bad migration succeeded")
		}
		if got := count(t, db, "a"); got != 1 {
			t.Errorf("a has %d rows after a failed migration, want 1", got)
		}
		if got := count(t, db, "schema_migrations"); got != 2 {
			t.Errorf("recorded %d migrations after a failed one, want 2", got)
		}
	})
}

func TestMigrateRejects(t *testing.T) {
	db := sqltest.Open(t, sqldb.SQLite)
	ctx := context.Background()
	dup := fstest.MapFS{"1_a.sql": {Data: []byte("SELECT 1")}, "001_b.sql": {Data: []byte("SELECT 1")}}
	if err := sqldb.Migrate(ctx, db, dup, "m"); !errors.Is(err, sqldb.ErrInvalidMigration) {
		t.Errorf("duplicate versions: error = %v, want ErrInvalidMigration", err)
	}
	if err := sqldb.Migrate(ctx, db, fstest.MapFS{}, "m; DROP TABLE x"); !errors.Is(err, sqldb.ErrInvalidMigration) {
		t.Errorf("bad table name: error = %v, want ErrInvalidMigration", err)
	}
}

// Concurrent Migrate calls (two processes starting at once) apply each file once.
func TestMigrateConcurrently(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		fsys := fstest.MapFS{
			"001_create.sql": {Data: []byte("CREATE TABLE a (id BIGINT PRIMARY KEY)")},
			"002_seed.sql":   {Data: []byte("INSERT INTO a (id) VALUES (1)")},
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = sqldb.Migrate(ctx, db, fsys, "schema_migrations") })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if got := count(t, db, "a"); got != 1 {
			t.Errorf("a has %d rows, want 1", got)
		}
	})
}

// Table swaps used by projection rebuilds rely on renaming inside a transaction.
func TestRenameInTransaction(t *testing.T) {
	sqltest.ForEach(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE live (id BIGINT PRIMARY KEY); CREATE TABLE next (id BIGINT PRIMARY KEY); INSERT INTO next VALUES (7)`); err != nil {
			t.Fatal(err)
		}
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			for _, s := range []string{`DROP TABLE live`, `ALTER TABLE next RENAME TO live`} {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := db.QueryRowContext(ctx, `SELECT id FROM live`).Scan(&id); err != nil || id != 7 {
			t.Errorf("after swap: id = %d, %v; want 7", id, err)
		}
	})
}

func count(t *testing.T, db *sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// PostgreSQL pools are bounded, by default or by pool_max_conns, which never
// reaches the server as a runtime parameter.
func TestPostgresPoolBound(t *testing.T) {
	dsn := os.Getenv(sqltest.EnvPostgresDSN)
	if dsn == "" {
		t.Skipf("set %s to run PostgreSQL tests", sqltest.EnvPostgresDSN)
	}
	ctx := context.Background()
	with := func(param string) string {
		if strings.Contains(dsn, "?") {
			return dsn + "&" + param
		}
		return dsn + "?" + param
	}
	for _, tt := range []struct {
		dsn  string
		want int
	}{
		{dsn, sqldb.DefaultPostgresMaxConns},
		{with("pool_max_conns=3"), 3},
	} {
		db, err := sqldb.Open(ctx, tt.dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", tt.dsn, err)
		}
		if got := db.Stats().MaxOpenConnections; got != tt.want {
			t.Errorf("Open(%q): pool bound %d, want %d", tt.dsn, got, tt.want)
		}
		db.Close()
	}
	for _, bad := range []string{"pool_max_conns=0", "pool_max_conns=many"} {
		if _, err := sqldb.Open(ctx, with(bad)); !errors.Is(err, sqldb.ErrInvalidDSN) {
			t.Errorf("Open with %s: %v, want ErrInvalidDSN", bad, err)
		}
	}
}

// Write transactions of one process on one SQLite file wait for each other in the
// process, not in SQLite's busy handler, even through two DBs opened on the file:
// with a busy_timeout of 1 ms the second transaction would fail with "database is
// locked" while the first holds the file for 200 ms. A transaction waiting its turn
// still ends with its context.
func TestSQLiteWritersTakeTurnsInProcess(t *testing.T) {
	ctx := context.Background()
	dsn := "file:" + filepath.Join(t.TempDir(), "turns.db") + "?_pragma=busy_timeout(1)"
	open := func() *sqldb.DB {
		db, err := sqldb.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.ExecContext(ctx, `CREATE TABLE w (n BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- a.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO w VALUES (1)`); err != nil {
				return err
			}
			close(holding)
			time.Sleep(200 * time.Millisecond)
			return nil
		})
	}()
	<-holding

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.InTx(short, func(tx *sql.Tx) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting transaction whose context ended: %v, want DeadlineExceeded", err)
	}
	err := b.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO w VALUES (2)`)
		return err
	})
	if err != nil {
		t.Fatalf("second writer: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first writer: %v", err)
	}
	if got := count(t, a, "w"); got != 2 {
		t.Errorf("rows = %d, want 2", got)
	}
}
