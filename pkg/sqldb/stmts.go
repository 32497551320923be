package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// ErrStmtsClosed is returned by Stmts.Prepared and Stmts.InTx after Stmts.Close.
var ErrStmtsClosed = errors.New("sqldb: statements closed")

// Stmts prepares each hot statement once and hands the prepared statement out from
// then on. Without it every query is parsed and planned again: on SQLite (modernc)
// that is a full sqlite3_prepare per call, which the profile of the read path showed
// as 9–12% of all CPU. pgx caches statements per connection by itself, so on PostgreSQL
// this mainly saves the cache lookup.
//
// A statement is prepared on first use rather than up front, so an owner can be built
// before its tables exist (a migration or a projector creates them later); a failed
// preparation is not remembered and the next call tries again. database/sql then
// prepares it on each pooled connection the first time that connection runs it.
//
// Statements name their tables, and both engines resolve those names again when the
// schema changes under a prepared statement: SQLite recompiles it from its text and
// PostgreSQL re-plans it. So a table dropped and replaced by one of the same name and
// columns (a read-model rebuild's swap), even by another process, is read through the
// same Stmts without re-preparing by hand; while no table of that name exists the
// statement fails, as the unprepared query would. Give each set of tables that lives
// and dies together (a rebuild's scratch tables) its own Stmts and Close it with them.
//
// Key statements by their text: only a bounded set of texts (constants, or a few
// shapes built from constants) may be passed, never text that embeds values. Safe for
// concurrent use.
type Stmts struct {
	db *DB

	mu     sync.RWMutex
	byText map[string]*sql.Stmt
	closed bool
}

// NewStmts returns an empty set of statements on db. It panics on a nil db: that is
// a wiring mistake.
func NewStmts(db *DB) *Stmts {
	if db == nil {
		panic("sqldb: nil db")
	}
	return &Stmts{db: db, byText: map[string]*sql.Stmt{}}
}

// Prepared returns query prepared on the database, preparing it on the first call.
// Use it as db.QueryContext and friends would be used; do not Close it. It returns the
// driver's error when preparing fails (a missing table, a syntax error) and
// ErrStmtsClosed after Close.
func (s *Stmts) Prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.RLock()
	st, ok := s.byText[query]
	closed := s.closed
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrStmtsClosed
	case ok:
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqldb: prepare: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		st.Close()
		return nil, ErrStmtsClosed
	}
	if have, ok := s.byText[query]; ok {
		st.Close() // another caller prepared it meanwhile
		return have, nil
	}
	s.byText[query] = st
	return st, nil
}

// InTx returns query prepared (see Prepared) and bound to tx, for use until tx ends.
// It returns the errors of Prepared.
func (s *Stmts) InTx(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	st, err := s.Prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// Len returns how many statements are prepared.
func (s *Stmts) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byText)
}

// Close closes every prepared statement; later calls of Prepared and InTx fail with
// ErrStmtsClosed. Statements in use by a running query or transaction are closed when
// it finishes. It returns the statements' Close errors joined.
func (s *Stmts) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, st := range s.byText {
		errs = append(errs, st.Close())
	}
	s.byText = nil
	return errors.Join(errs...)
}
