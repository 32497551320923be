// Package sqlstore keeps shipments in SQL (SQLite or PostgreSQL through sqldb). The
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
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the root of the shipping schema's migrations, for the participant
// shell to apply.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Store is the SQL Store of the shipping app.
type Store struct {
	db *sqldb.DB
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = txStore{}
)

// New returns a store over db, migrated with Migrations.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

// TxView is the shipping store's view of a transaction, for the participant runtime.
func TxView(tx *sql.Tx) app.Tx { return txStore{tx} }

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
	(order_id, id, tracking_id, status, name, street, city, postal_code, country_code, cost_minor, currency, create_time, update_time, user_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
	ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, update_time = excluded.update_time`,
		s.OrderID, s.ID, s.TrackingID, int(s.Status), s.Address.Name, s.Address.Street, s.Address.City,
		s.Address.PostalCode, s.Address.CountryCode, s.Cost, domain.Currency,
		s.CreateTime.UnixMicro(), s.UpdateTime.UnixMicro(), s.UserID)
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
	country_code, cost_minor, create_time, update_time, user_id FROM shipments WHERE order_id = $1`, orderID).
		Scan(&s.OrderID, &s.ID, &s.TrackingID, &status, &s.Address.Name, &s.Address.Street, &s.Address.City,
			&s.Address.PostalCode, &s.Address.CountryCode, &s.Cost, &created, &updated, &s.UserID)
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
