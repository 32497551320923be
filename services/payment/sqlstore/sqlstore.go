// Package sqlstore keeps payments, the payment inbox and the replies given to
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
	"github.com/eventshop/eventshop/services/payment/app"
	"github.com/eventshop/eventshop/services/payment/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// consumer names the inbox records of the payment command handlers.
const consumer = "payment-commands"

// Store is the SQL Store of the payment app.
type Store struct {
	db    *sqldb.DB
	inbox *messaging.Inbox
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = txStore{}
)

// Open migrates db (payment tables and inbox) and returns a store over it. It
// returns the migration's database error.
func Open(ctx context.Context, db *sqldb.DB) (*Store, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("payment migrations: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, sub, "payment_migrations"); err != nil {
		return nil, err
	}
	inbox := messaging.NewInbox("payment_inbox")
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
	if _, err := s.db.ExecContext(ctx, `DELETE FROM payment_replies WHERE create_time < $1`, before.UnixMicro()); err != nil {
		return 0, fmt.Errorf("prune replies: %w", err)
	}
	return n, nil
}

// StoredReply implements app.Store.
func (s *Store) StoredReply(ctx context.Context, commandID string) (app.Reply, bool, error) {
	return loadReply(ctx, s.db, commandID)
}

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
	(id, order_id, status, currency, authorized, captured, refunded, card_brand, decline_code, decline_reason, create_time, update_time)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT (id) DO UPDATE SET status = excluded.status, authorized = excluded.authorized,
	captured = excluded.captured, refunded = excluded.refunded, update_time = excluded.update_time`,
		p.ID, p.OrderID, int(p.Status), p.Currency, p.Authorized, p.Captured, p.Refunded, p.CardBrand,
		p.DeclineCode, p.DeclineReason, p.CreateTime.UnixMicro(), p.UpdateTime.UnixMicro())
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
	card_brand, decline_code, decline_reason, create_time, update_time FROM payments `+where, arg).
		Scan(&p.ID, &p.OrderID, &status, &p.Currency, &p.Authorized, &p.Captured, &p.Refunded,
			&p.CardBrand, &p.DeclineCode, &p.DeclineReason, &created, &updated)
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

func saveReply(ctx context.Context, tx *sql.Tx, commandID string, r app.Reply) error {
	b, err := proto.Marshal(r.Msg)
	if err != nil {
		return fmt.Errorf("marshal reply to %s: %w", commandID, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO payment_replies (command_id, subject, type, payload, create_time)
	VALUES ($1, $2, $3, $4, $5)`, commandID, r.Subject, string(r.Msg.ProtoReflect().Descriptor().FullName()),
		base64.StdEncoding.EncodeToString(b), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("save reply to %s: %w", commandID, err)
	}
	return nil
}

func loadReply(ctx context.Context, q querier, commandID string) (app.Reply, bool, error) {
	var subject, typ, payload string
	err := q.QueryRowContext(ctx, `SELECT subject, type, payload FROM payment_replies WHERE command_id = $1`, commandID).
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
