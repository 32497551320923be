// Package sqlstore keeps payments in SQL (SQLite or PostgreSQL through sqldb). The
// inbox and the stored replies are the participant runtime's (pkg/participant).
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/payment/app"
	"github.com/eventshop/eventshop/services/payment/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the root of the payment schema's migrations, for the participant
// shell to apply.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Store is the SQL Store of the payment app.
type Store struct {
	db *sqldb.DB
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = txStore{}
)

// New returns a store over db, migrated with Migrations.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

// TxView is the payment store's view of a transaction, for the participant runtime.
func TxView(tx *sql.Tx) app.Tx { return txStore{tx} }

// Payment implements app.Store; it returns domain.ErrNotFound or the database error.
func (s *Store) Payment(ctx context.Context, id string) (domain.Payment, error) {
	p, err := loadPayment(ctx, s.db, `WHERE id = $1`, id)
	if err != nil {
		return domain.Payment{}, err
	}
	if p == nil {
		return domain.Payment{}, fmt.Errorf("payment %s: %w", id, domain.ErrNotFound)
	}
	return *p, nil
}

// PaymentByOrder implements app.Store; it returns domain.ErrNotFound or the database
// error.
func (s *Store) PaymentByOrder(ctx context.Context, orderID string) (domain.Payment, error) {
	p, err := loadPayment(ctx, s.db, `WHERE order_id = $1`, orderID)
	if err != nil {
		return domain.Payment{}, err
	}
	if p == nil {
		return domain.Payment{}, fmt.Errorf("order %s: %w", orderID, domain.ErrNotFound)
	}
	return *p, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type txStore struct{ tx *sql.Tx }

func (t txStore) PaymentByOrder(ctx context.Context, orderID string) (*domain.Payment, error) {
	return loadPayment(ctx, t.tx, `WHERE order_id = $1`, orderID)
}

// SavePayment checks the money invariants first, so a bug shows as
// domain.ErrIllegalState rather than as a constraint violation.
func (t txStore) SavePayment(ctx context.Context, p domain.Payment) error {
	if err := p.Check(); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO payments
	(id, order_id, status, currency, authorized, captured, refunded, card_brand, decline_code, decline_reason, create_time, update_time, user_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (id) DO UPDATE SET status = excluded.status, authorized = excluded.authorized,
	captured = excluded.captured, refunded = excluded.refunded, update_time = excluded.update_time`,
		p.ID, p.OrderID, int(p.Status), p.Currency, p.Authorized, p.Captured, p.Refunded, p.CardBrand,
		p.DeclineCode, p.DeclineReason, p.CreateTime.UnixMicro(), p.UpdateTime.UnixMicro(), p.UserID)
	if err != nil {
		return fmt.Errorf("save payment %s: %w", p.ID, err)
	}
	return nil
}

func loadPayment(ctx context.Context, q querier, where string, arg string) (*domain.Payment, error) {
	var p domain.Payment
	var status int
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT id, order_id, status, currency, authorized, captured, refunded,
	card_brand, decline_code, decline_reason, create_time, update_time, user_id FROM payments `+where, arg).
		Scan(&p.ID, &p.OrderID, &status, &p.Currency, &p.Authorized, &p.Captured, &p.Refunded,
			&p.CardBrand, &p.DeclineCode, &p.DeclineReason, &created, &updated, &p.UserID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load payment %s: %w", arg, err)
	}
	p.Status = domain.Status(status)
	p.CreateTime = time.UnixMicro(created).UTC()
	p.UpdateTime = time.UnixMicro(updated).UTC()
	return &p, nil
}
