// Package sqldb opens the SQL databases that hold read models and service state:
// SQLite (pure Go, embedded mode) or PostgreSQL (distributed mode) behind one *sql.DB,
// with embedded numbered migrations and a transaction helper. Write SQL once with $1
// placeholders, as text: each connection compiles a statement once. Pools, compiled
// statements, durability: see README.md.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
)

// Dialect names the SQL database behind a DB.
type Dialect string

const (
	// SQLite is modernc.org/sqlite, driver "sqlite".
	SQLite Dialect = "sqlite"
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib, driver "pgx".
	Postgres Dialect = "postgres"
)

// ErrInvalidDSN is returned by Open for a DSN it cannot read.
var ErrInvalidDSN = errors.New("sqldb: invalid dsn")

// DefaultPostgresMaxConns bounds each PostgreSQL pool unless the DSN's pool_max_conns
// says otherwise. Unbounded, a burst makes every process open connection after
// connection until the server's max_connections (100 by default) refuses the next
// service; and database/sql keeps only two idle, so under steady concurrency it would
// open and close a connection per query. Six services with ten each leave room.
const DefaultPostgresMaxConns = 10

// DefaultSQLiteMaxConns bounds each SQLite pool, idle connections included. Left to
// database/sql's default of two idle connections, concurrent readers made it open and
// close a SQLite connection per query (file open, pragmas, schema parse, and every
// prepared statement lost with it): 8–11% of the read path's CPU. SQLite in pure Go is
// CPU-bound on two cores, so more connections only timeslice; waiting for a pooled one
// is cheaper than opening one.
const DefaultSQLiteMaxConns = 10

// poolParam is the DSN parameter that sets the pool bound; it is the name pgxpool
// reads, and it is taken out before the DSN reaches the server.
const poolParam = "pool_max_conns"

// DB is a *sql.DB that knows its dialect. $1, $2, ... placeholders work unchanged on
// both dialects (modernc.org/sqlite binds $N to the N-th argument), as do
// INSERT ... ON CONFLICT, BIGINT, TEXT and ALTER TABLE ... RENAME TO inside a
// transaction, so most SQL needs no per-dialect variant.
type DB struct {
	*sql.DB
	Dialect Dialect
	// writer, for a SQLite file, is the file's write lock in this process (see
	// InTx); nil for PostgreSQL and in-memory SQLite.
	writer chan struct{}
}

// sqlitePragmas are set on every SQLite connection. WAL lets readers run beside the
// writer; busy_timeout makes a second writer wait instead of failing; _txlock=immediate
// takes the write lock at BEGIN, so two read-then-write transactions cannot deadlock on
// lock upgrade (SQLite would fail one with SQLITE_BUSY without waiting). synchronous=NORMAL
// in WAL mode loses nothing committed when the process crashes; a power loss or OS crash
// may lose the last transactions but never corrupts the file. Commits then wait for no
// fsync; README.md says why that is the right trade here.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(1)",
}

// Open connects to the database named by dsn and pings it. A DSN starting with
// postgres:// or postgresql:// opens PostgreSQL (pgx), with a pool of at most
// pool_max_conns connections (a DSN parameter, default DefaultPostgresMaxConns);
// anything else is SQLite, with a pool of DefaultSQLiteMaxConns: a file
// path, "sqlite:<path>", "sqlite://<path>", or a "file:<path>?..." URL whose own
// query parameters are kept. ":memory:" opens a private in-memory SQLite database on a
// single connection. It returns ErrInvalidDSN for an empty or malformed DSN and the
// driver's error when the database cannot be opened or reached.
func Open(ctx context.Context, dsn string) (*DB, error) {
	dialect, driverDSN, maxConns, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	if dialect == Postgres {
		db, err = sql.Open("pgx", driverDSN)
	} else {
		var c driver.Connector
		if c, err = newCachingConnector(driverDSN); err == nil {
			db = sql.OpenDB(c)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqldb: open %s: %w", dialect, err)
	}
	switch {
	case dialect == SQLite && strings.Contains(driverDSN, ":memory:"):
		// Every connection to :memory: is a different database.
		db.SetMaxOpenConns(1)
	case dialect == SQLite:
		maxConns = DefaultSQLiteMaxConns
	}
	if maxConns > 0 {
		db.SetMaxOpenConns(maxConns)
		db.SetMaxIdleConns(maxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: ping %s: %w", dialect, err)
	}
	out := &DB{DB: db, Dialect: dialect}
	if dialect == SQLite && !strings.Contains(driverDSN, ":memory:") {
		out.writer = writerFor(driverDSN)
	}
	return out, nil
}

// writers holds one write lock per SQLite file opened in this process, so that two
// DBs on one file share it.
var writers sync.Map // absolute path → chan struct{}

// writerFor returns the write lock of the SQLite file a driver DSN names.
func writerFor(driverDSN string) chan struct{} {
	path, _, _ := strings.Cut(strings.TrimPrefix(driverDSN, "file:"), "?")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	w, _ := writers.LoadOrStore(path, make(chan struct{}, 1))
	return w.(chan struct{})
}

// parseDSN picks the dialect and rewrites the DSN for its driver: a PostgreSQL one
// loses pool_max_conns, returned as the pool bound (DefaultPostgresMaxConns when
// absent; 0 for SQLite), and a SQLite one becomes a modernc.org/sqlite one.
func parseDSN(dsn string) (Dialect, string, int, error) {
	switch {
	case dsn == "":
		return "", "", 0, fmt.Errorf("%w: empty", ErrInvalidDSN)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", 0, fmt.Errorf("%w: %w", ErrInvalidDSN, err)
		}
		q := u.Query()
		if !q.Has(poolParam) {
			return Postgres, dsn, DefaultPostgresMaxConns, nil
		}
		n, err := strconv.Atoi(q.Get(poolParam))
		if err != nil || n < 1 {
			return "", "", 0, fmt.Errorf("%w: %s=%q: want a positive integer", ErrInvalidDSN, poolParam, q.Get(poolParam))
		}
		q.Del(poolParam)
		u.RawQuery = q.Encode()
		return Postgres, u.String(), n, nil
	}
	path, query := dsn, ""
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		path = strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(dsn, "file:"):
		path = strings.TrimPrefix(dsn, "file:")
	}
	if p, q, ok := strings.Cut(path, "?"); ok {
		path, query = p, q
	}
	if path == "" {
		return "", "", 0, fmt.Errorf("%w: %q names no SQLite file", ErrInvalidDSN, dsn)
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", "", 0, fmt.Errorf("%w: %q: %w", ErrInvalidDSN, dsn, err)
	}
	have := map[string]bool{}
	for _, p := range vals["_pragma"] {
		name, _, _ := strings.Cut(p, "(")
		have[strings.ToLower(strings.TrimSpace(name))] = true
	}
	for _, p := range sqlitePragmas {
		name, _, _ := strings.Cut(p, "(")
		if path == ":memory:" && name == "journal_mode" {
			continue
		}
		if !have[name] {
			vals.Add("_pragma", p)
		}
	}
	if vals.Get("_txlock") == "" {
		vals.Set("_txlock", "immediate")
	}
	return SQLite, "file:" + path + "?" + vals.Encode(), 0, nil
}

// InTx runs fn in a transaction and commits it if fn returns nil. It rolls back when
// fn returns an error (returned as is, so errors.Is works on it) or panics (the panic
// continues after the rollback). It returns the error of BeginTx or Commit, wrapped.
//
// On a SQLite file, transactions of one process take turns on a lock of the file's
// own before BEGIN: SQLite lets one writer in at a time and makes the others poll,
// sleeping 1, 2, 5, 10 ms and longer between tries, so under load a waiting
// transaction slept on past the commit it waited for, with its worker idle and the
// CPU with it. Woken by the lock's release instead, it begins at once. Writers in
// other processes still wait on busy_timeout.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if db.writer != nil {
		select {
		case db.writer <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("sqldb: begin: %w", ctx.Err())
		}
		defer func() { <-db.writer }()
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}
