// Package sqlstore keeps shipments, the shipping inbox and the replies given to
// commands in SQL (SQLite or PostgreSQL through sqldb), one transaction per command.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

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
	db    *sqldb.DB
	inbox *messaging.Inbox
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
	inbox := messaging.NewInbox("shipping_inbox")
	if err := inbox.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	return &Store{db: db, inbox: inbox}, nil
}

// Execute implements app.Store.
func (s *Store) Execute(ctx context.Context, commandID string, fn func(ctx context.Context, tx app.Tx) (app.Reply, error)) (app.Reply, error) {
	var reply app.Reply
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		first, err := s.inbox.Once(ctx, tx, consumer, commandID)
		if err != nil {
			return err
		}
		if !first {
			r, ok, err := loadReply(ctx, tx, commandID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("command %s processed without a stored reply", commandID)
			}
			reply = r
			return nil
		}
		if reply, err = fn(ctx, txStore{tx}); err != nil {
			return err
		}
		return saveReply(ctx, tx, commandID, reply)
	})
	return reply, err
}

// Prune forgets the commands processed before: their inbox records and stored
// replies. A command resent after that is handled as new, so keep them longer than
// any redelivery or saga retry can take. It returns how many commands it forgot and
// the database error.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.inbox.Prune(ctx, s.db.DB, before)
	if err != nil {
		return 0, err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM shipping_replies WHERE create_time < $1`, before.UnixMicro()); err != nil {
		return 0, fmt.Errorf("prune replies: %w", err)
	}
	return n, nil
}

// StoredReply implements app.Store.
func (s *Store) StoredReply(ctx context.Context, commandID string) (app.Reply, bool, error) {
	return loadReply(ctx, s.db, commandID)
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

func saveReply(ctx context.Context, tx *sql.Tx, commandID string, r app.Reply) error {
	b, err := proto.Marshal(r.Msg)
	if err != nil {
		return fmt.Errorf("marshal reply to %s: %w", commandID, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO shipping_replies (command_id, subject, type, payload, create_time)
	VALUES ($1, $2, $3, $4, $5)`, commandID, r.Subject, string(r.Msg.ProtoReflect().Descriptor().FullName()),
		base64.StdEncoding.EncodeToString(b), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("save reply to %s: %w", commandID, err)
	}
	return nil
}

func loadReply(ctx context.Context, q querier, commandID string) (app.Reply, bool, error) {
	var subject, typ, payload string
	err := q.QueryRowContext(ctx, `SELECT subject, type, payload FROM shipping_replies WHERE command_id = $1`, commandID).
		Scan(&subject, &typ, &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Reply{}, false, nil
	}
	if err != nil {
		return app.Reply{}, false, fmt.Errorf("load reply to %s: %w", commandID, err)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return app.Reply{}, false, fmt.Errorf("reply to %s has unknown type %s: %w", commandID, typ, err)
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return app.Reply{}, false, fmt.Errorf("decode reply to %s: %w", commandID, err)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(b, msg); err != nil {
		return app.Reply{}, false, fmt.Errorf("unmarshal reply to %s: %w", commandID, err)
	}
	return app.Reply{Subject: subject, Msg: msg}, true, nil
}
