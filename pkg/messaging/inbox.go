package messaging

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"time"
)

// Inbox records which messages a consumer has processed, in the consumer's own SQL
// database and in the same transaction as the handler's state change, so a message
// redelivered after a crash or a lost ack changes state once. Its SQL runs unchanged
// on SQLite (modernc.org/sqlite) and PostgreSQL (pgx stdlib).
//
// Use it in every handler whose effect is not idempotent by itself: taking money,
// reserving or releasing stock, creating a shipment, appending to a read model by
// increment. A handler whose effect is naturally idempotent (an upsert of the latest
// state, a guarded state transition such as "void if authorized", a call that itself
// dedups on the message id) does not need it.
type Inbox struct {
	table   string
	migrate string
	insert  string
	prune   string
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// DefaultInboxTable is the table name used when NewInbox gets an empty name.
const DefaultInboxTable = "processed_messages"

// NewInbox returns an inbox stored in table (DefaultInboxTable when empty).
// It panics if table is not a plain SQL identifier: names are fixed at wiring time.
func NewInbox(table string) *Inbox {
	if table == "" {
		table = DefaultInboxTable
	}
	if !identifier.MatchString(table) {
		panic(fmt.Sprintf("messaging: inbox table %q is not a plain identifier", table))
	}
	return &Inbox{
		table: table,
		migrate: `CREATE TABLE IF NOT EXISTS ` + table + ` (
	consumer     TEXT NOT NULL,
	message_id   TEXT NOT NULL,
	processed_at TIMESTAMP NOT NULL,
	PRIMARY KEY (consumer, message_id)
)`,
		insert: `INSERT INTO ` + table + ` (consumer, message_id, processed_at) VALUES ($1, $2, $3)
ON CONFLICT (consumer, message_id) DO NOTHING`,
		prune: `DELETE FROM ` + table + ` WHERE processed_at < $1`,
	}
}

// Table is the inbox table name.
func (i *Inbox) Table() string { return i.table }

// Migrate creates the inbox table if it does not exist. It returns the database error.
func (i *Inbox) Migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, i.migrate); err != nil {
		return fmt.Errorf("messaging: migrate inbox %s: %w", i.table, err)
	}
	return nil
}

// Once records msgID as processed by consumer inside tx and reports whether this is
// the first time. When first is false the caller skips its work and commits (or rolls
// back) so the message is acknowledged; when true it does its work in the same tx, so
// the record and the work commit or vanish together. It returns the database error.
func (i *Inbox) Once(ctx context.Context, tx *sql.Tx, consumer, msgID string) (first bool, err error) {
	res, err := tx.ExecContext(ctx, i.insert, consumer, msgID, time.Now().UTC())
	if err != nil {
		return false, fmt.Errorf("messaging: inbox %s record %s/%s: %w", i.table, consumer, msgID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("messaging: inbox %s rows affected: %w", i.table, err)
	}
	return n == 1, nil
}

// Process runs fn in a new transaction of db unless consumer already processed msgID,
// and commits fn's work together with the inbox record. It reports whether fn ran and
// committed. It returns fn's error (after rolling back) or the database error.
func (i *Inbox) Process(ctx context.Context, db *sql.DB, consumer, msgID string, fn func(ctx context.Context, tx *sql.Tx) error) (ran bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("messaging: inbox begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	first, err := i.Once(ctx, tx, consumer, msgID)
	if err != nil {
		return false, err
	}
	if first {
		if err := fn(ctx, tx); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("messaging: inbox commit: %w", err)
	}
	return first, nil
}

// Prune deletes records older than before and returns how many. Keep records longer
// than any redelivery can take (the stream's max age is a safe bound). It returns the
// database error.
func (i *Inbox) Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, i.prune, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("messaging: prune inbox %s: %w", i.table, err)
	}
	return res.RowsAffected()
}
