package sqldb

import (
	"context"
	"database/sql/driver"
	"reflect"

	lru "github.com/hashicorp/golang-lru/v2"
	"modernc.org/sqlite"
)

// stmtCacheSize bounds the statements each SQLite connection keeps compiled. A
// service runs a few dozen distinct statements; one-off SQL (migrations) ages out.
const stmtCacheSize = 128

// cachingConnector opens SQLite connections that keep every statement they run
// compiled, keyed by its text. modernc.org/sqlite parses, plans and finalizes the SQL
// of each Exec and Query it is given as text; in the order pipeline that was 6% of all
// CPU (participants' inbox, replies and stores, the projector). With the cache, code
// keeps passing SQL text to ExecContext and QueryContext, inside transactions or not,
// and pays for parsing once per connection. PostgreSQL needs no such layer: pgx caches
// prepared statements per connection itself.
type cachingConnector struct {
	driver.Connector
}

func newCachingConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return cachingConnector{c}, nil
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newCachingConn(conn)
}

// sqliteConn is what modernc.org/sqlite's connection implements and cachingConn
// passes on.
type sqliteConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is one SQLite connection with its compiled statements. database/sql
// uses a connection from one goroutine at a time, so it needs no lock; but a
// statement whose rows are still open cannot run again until they are closed (a
// query inside a loop over the same query's rows), so such a call runs uncached.
type cachingConn struct {
	sqliteConn
	stmts *lru.Cache[string, *cachedStmt]
	// inTx is set while a transaction is open: its statements run uninterrupted
	// (see BeginTx).
	inTx bool
}

type cachedStmt struct {
	stmt interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy bool // its rows are open
}

func newCachingConn(c driver.Conn) (driver.Conn, error) {
	sc, ok := c.(sqliteConn)
	if !ok {
		// Every modernc.org/sqlite version this module can build with implements all
		// of these; a future one that does not is served uncached rather than wrongly.
		return c, nil
	}
	cache, err := lru.NewWithEvict(stmtCacheSize, func(_ string, s *cachedStmt) {
		if !s.busy {
			_ = s.stmt.Close()
		}
		// A busy statement is closed by its rows.
	})
	if err != nil {
		return nil, err
	}
	return &cachingConn{sqliteConn: sc, stmts: cache}, nil
}

// cached returns the compiled statement for query, compiling it on first use, or nil
// when it is busy or cannot be compiled as a single reusable statement (the caller
// then runs the query uncached, so errors are reported the driver's usual way).
func (c *cachingConn) cached(ctx context.Context, query string) *cachedStmt {
	if s, ok := c.stmts.Get(query); ok {
		if s.busy {
			return nil
		}
		return s
	}
	ds, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	st, ok := ds.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		_ = ds.Close()
		return nil
	}
	s := &cachedStmt{stmt: st}
	c.stmts.Add(query, s)
	return s
}

// BeginTx starts a transaction whose statements, COMMIT included, SQLite does not
// interrupt half-way when their context ends. modernc.org/sqlite starts a goroutine,
// a channel and a progress handler for every statement run with a cancellable
// context, only to interrupt it mid-step; in the order pipeline, whose transactions
// are a few indexed reads and writes each, that was 2 % of all CPU and most of the
// goroutines started. The context still rules the transaction: database/sql checks it
// before each statement and rolls the transaction back when it ends, after the
// statement running then; and no statement outside a transaction changes (a prune
// or a long read stays interruptible).
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.sqliteConn.BeginTx(context.WithoutCancel(ctx), opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return cachingTx{Tx: tx, conn: c}, nil
}

// cachingTx marks the end of its connection's transaction.
type cachingTx struct {
	driver.Tx
	conn *cachingConn
}

func (t cachingTx) Commit() error {
	t.conn.inTx = false
	return t.Tx.Commit()
}

func (t cachingTx) Rollback() error {
	t.conn.inTx = false
	return t.Tx.Rollback()
}

// statementContext is ctx for a statement outside a transaction, and ctx without its
// cancellation inside one (see BeginTx).
func (c *cachingConn) statementContext(ctx context.Context) context.Context {
	if c.inTx {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ctx = c.statementContext(ctx)
	s := c.cached(ctx, query)
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return s.stmt.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ctx = c.statementContext(ctx)
	s := c.cached(ctx, query)
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, conn: c, query: query, s: s}, nil
}

func (c *cachingConn) Close() error {
	c.stmts.Purge() // closes every statement not held by open rows
	return c.sqliteConn.Close()
}

// cachedRows gives its statement back when closed: reset for the next call, or
// closed if the statement left the cache meanwhile.
type cachedRows struct {
	driver.Rows
	conn  *cachingConn
	query string
	s     *cachedStmt
}

func (r *cachedRows) Close() error {
	if r.s == nil {
		return nil
	}
	err := r.Rows.Close()
	r.s.busy = false
	if cur, ok := r.conn.stmts.Peek(r.query); !ok || cur != r.s {
		if cerr := r.s.stmt.Close(); err == nil {
			err = cerr
		}
	}
	r.s = nil
	return err
}

// The column type methods database/sql's ColumnTypes reads, passed on.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
