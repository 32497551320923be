// Package sqlstore keeps shipments, the shipping inbox and the replies given to
// commands in SQL (SQLite or PostgreSQL through sqldb), one transaction per command.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// consumer names the inbox records of the shipping command handlers.
const consumer = "shipping-commands"

// Store is the SQL Store of the shipping app.
type Store struct {
	db      *sqldb.DB
	replies *messaging.Replies
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = txStore{}
)

// Open migrates db (shipping tables and inbox) and returns a store over it. It
// returns the migration's database error.
func Open(ctx context.Context, db *sqldb.DB) (*Store, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("shipping migrations: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, sub, "shipping_migrations"); err != nil {
		return nil, err
	}
	replies := messaging.NewReplies(messaging.NewInbox("shipping_inbox"), consumer, "shipping_replies")
	if err := replies.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	return &Store{db: db, replies: replies}, nil
}

// Execute implements app.Store.
func (s *Store) Execute(ctx context.Context, commandID string, fn func(ctx context.Context, tx app.Tx) (app.Reply, error)) (app.Reply, error) {
	var reply messaging.Reply
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		reply, err = s.replies.Execute(ctx, tx, commandID, func(ctx context.Context) (messaging.Reply, error) {
			r, err := fn(ctx, txStore{tx})
			return messaging.Reply(r), err
		})
		return err
	})
	return app.Reply(reply), err
}

// Prune forgets the commands processed before: their inbox records and stored
// replies. A command resent after that is handled as new, so keep them longer than
// any redelivery or saga retry can take. It returns how many commands it forgot and
// the database error.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	return s.replies.Prune(ctx, s.db.DB, before)
}

// StoredReply implements app.Store.
func (s *Store) StoredReply(ctx context.Context, commandID string) (app.Reply, bool, error) {
	r, ok, err := s.replies.Load(ctx, s.db, commandID)
	return app.Reply(r), ok, err
}

// ShipmentByOrder implements app.Store; it returns domain.ErrNotFound or the database
// error.
func (s *Store) ShipmentByOrder(ctx context.Context, orderID string) (domain.Shipment, error) {
	sh, err := shipmentByOrder(ctx, s.db, orderID)
	if err != nil {
		return domain.Shipment{}, err
	}
	if sh == nil {
		return domain.Shipment{}, fmt.Errorf("order %s: %w", orderID, domain.ErrNotFound)
	}
	return *sh, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type txStore struct{ tx *sql.Tx }

func (t txStore) ShipmentByOrder(ctx context.Context, orderID string) (*domain.Shipment, error) {
	return shipmentByOrder(ctx, t.tx, orderID)
}

func (t txStore) SaveShipment(ctx context.Context, s domain.Shipment) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO shipments
	(order_id, id, tracking_id, status, name, street, city, postal_code, country_code, cost_minor, currency, create_time, update_time)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, update_time = excluded.update_time`,
		s.OrderID, s.ID, s.TrackingID, int(s.Status), s.Address.Name, s.Address.Street, s.Address.City,
		s.Address.PostalCode, s.Address.CountryCode, s.Cost, domain.Currency,
		s.CreateTime.UnixMicro(), s.UpdateTime.UnixMicro())
	if err != nil {
		return fmt.Errorf("save shipment of order %s: %w", s.OrderID, err)
	}
	return nil
}

func shipmentByOrder(ctx context.Context, q querier, orderID string) (*domain.Shipment, error) {
	var s domain.Shipment
	var status int
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT order_id, id, tracking_id, status, name, street, city, postal_code,
	country_code, cost_minor, create_time, update_time FROM shipments WHERE order_id = $1`, orderID).
		Scan(&s.OrderID, &s.ID, &s.TrackingID, &status, &s.Address.Name, &s.Address.Street, &s.Address.City,
			&s.Address.PostalCode, &s.Address.CountryCode, &s.Cost, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load shipment of order %s: %w", orderID, err)
	}
	s.Status = domain.Status(status)
	s.CreateTime = time.UnixMicro(created).UTC()
	s.UpdateTime = time.UnixMicro(updated).UTC()
	return &s, nil
}
