// Package sqlstore keeps stock, reservations and the outbox of expiry events in SQL
// (SQLite or PostgreSQL through sqldb). Stock moves are conditional UPDATEs, so no count ever goes below zero. The
// inbox and the stored replies are the participant runtime's (pkg/participant).
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

	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/inventory/app"
	"github.com/eventshop/eventshop/services/inventory/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the root of the inventory schema's migrations, for the participant
// shell to apply.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Store is the SQL Store of the inventory app.
type Store struct {
	db *sqldb.DB
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = txStore{}
)

// New returns a store over db, migrated with Migrations.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

// TxView is the inventory store's view of a transaction, for the participant runtime.
func TxView(tx *sql.Tx) app.Tx { return txStore{tx} }

// Update implements app.Store.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, txStore{tx}) })
}

// DueReservations implements app.Store.
func (s *Store) DueReservations(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT order_id FROM reservations WHERE status = $1 AND expire_time <= $2
	ORDER BY expire_time LIMIT $3`, int(domain.StatusHeld), now.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("due reservations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("due reservations: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// PendingEvents implements app.Store.
func (s *Store) PendingEvents(ctx context.Context, limit int) ([]app.Outgoing, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, order_id, subject, type, payload FROM inventory_outbox
	ORDER BY create_time, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("pending events: %w", err)
	}
	defer rows.Close()
	var out []app.Outgoing
	for rows.Next() {
		var e app.Outgoing
		var typ, payload string
		if err := rows.Scan(&e.ID, &e.OrderID, &e.Subject, &typ, &payload); err != nil {
			return nil, fmt.Errorf("pending events: %w", err)
		}
		if e.Msg, err = decode(typ, payload); err != nil {
			return nil, fmt.Errorf("pending event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// DeleteEvent implements app.Store.
func (s *Store) DeleteEvent(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM inventory_outbox WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete event %s: %w", id, err)
	}
	return nil
}

const stockColumns = `product_id, available, reserved, sold, total_stocked`

func scanStock(row interface{ Scan(...any) error }) (domain.Stock, error) {
	var s domain.Stock
	err := row.Scan(&s.ProductID, &s.Available, &s.Reserved, &s.Sold, &s.TotalStocked)
	return s, err
}

// Stock implements app.Store; it returns domain.ErrNotFound or the database error.
func (s *Store) Stock(ctx context.Context, productID string) (domain.Stock, error) {
	st, err := scanStock(s.db.QueryRowContext(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id = $1`, productID))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Stock{}, fmt.Errorf("stock of %s: %w", productID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Stock{}, fmt.Errorf("stock of %s: %w", productID, err)
	}
	return st, nil
}

// ListStock implements app.Store.
func (s *Store) ListStock(ctx context.Context, after string, limit int) ([]domain.Stock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id > $1
	ORDER BY product_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list stock: %w", err)
	}
	defer rows.Close()
	var out []domain.Stock
	for rows.Next() {
		st, err := scanStock(rows)
		if err != nil {
			return nil, fmt.Errorf("list stock: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// SetAvailable implements app.Store in one statement, so a concurrent reservation
// cannot slip between reading and writing the count.
func (s *Store) SetAvailable(ctx context.Context, productID string, available int64) (domain.Stock, error) {
	var st domain.Stock
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO stock (`+stockColumns+`) VALUES ($1, $2, 0, 0, $2)
		ON CONFLICT (product_id) DO UPDATE SET
			total_stocked = stock.total_stocked + excluded.available - stock.available,
			available = excluded.available`, productID, available); err != nil {
			return err
		}
		var err error
		st, err = scanStock(tx.QueryRowContext(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id = $1`, productID))
		return err
	})
	if err != nil {
		return domain.Stock{}, fmt.Errorf("set stock of %s: %w", productID, err)
	}
	return st, nil
}

// Seed implements app.Store.
func (s *Store) Seed(ctx context.Context, productIDs []string, units int64) (int, error) {
	created := 0
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, id := range productIDs {
			res, err := tx.ExecContext(ctx, `INSERT INTO stock (`+stockColumns+`) VALUES ($1, $2, 0, 0, $2)
			ON CONFLICT (product_id) DO NOTHING`, id, units)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				created++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("seed stock: %w", err)
	}
	return created, nil
}

type txStore struct{ tx *sql.Tx }

func (t txStore) ReservationByOrder(ctx context.Context, orderID string) (*domain.Reservation, error) {
	var r domain.Reservation
	var status int
	var expire, created, updated int64
	err := t.tx.QueryRowContext(ctx, `SELECT id, order_id, status, expire_time, create_time, update_time
	FROM reservations WHERE order_id = $1`, orderID).Scan(&r.ID, &r.OrderID, &status, &expire, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load reservation of order %s: %w", orderID, err)
	}
	r.Status = domain.Status(status)
	r.ExpireTime = time.UnixMicro(expire).UTC()
	r.CreateTime = time.UnixMicro(created).UTC()
	r.UpdateTime = time.UnixMicro(updated).UTC()
	rows, err := t.tx.QueryContext(ctx, `SELECT product_id, quantity FROM reservation_lines
	WHERE reservation_id = $1 ORDER BY product_id`, r.ID)
	if err != nil {
		return nil, fmt.Errorf("load reservation lines of order %s: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l domain.Line
		if err := rows.Scan(&l.ProductID, &l.Quantity); err != nil {
			return nil, fmt.Errorf("load reservation lines of order %s: %w", orderID, err)
		}
		r.Lines = append(r.Lines, l)
	}
	return &r, rows.Err()
}

func (t txStore) SaveReservation(ctx context.Context, r domain.Reservation) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO reservations (id, order_id, status, expire_time, create_time, update_time)
	VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (id) DO UPDATE SET status = excluded.status, update_time = excluded.update_time`,
		r.ID, r.OrderID, int(r.Status), r.ExpireTime.UnixMicro(), r.CreateTime.UnixMicro(), r.UpdateTime.UnixMicro())
	if err != nil {
		return fmt.Errorf("save reservation of order %s: %w", r.OrderID, err)
	}
	for _, l := range r.Lines {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO reservation_lines (reservation_id, product_id, quantity)
		VALUES ($1, $2, $3) ON CONFLICT (reservation_id, product_id) DO NOTHING`, r.ID, l.ProductID, l.Quantity); err != nil {
			return fmt.Errorf("save reservation line %s of order %s: %w", l.ProductID, r.OrderID, err)
		}
	}
	return nil
}

// Take is the conditional update that makes overselling impossible: the row changes
// only if enough units are available at the moment it is written.
func (t txStore) Take(ctx context.Context, l domain.Line) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE stock SET available = available - $1, reserved = reserved + $1
	WHERE product_id = $2 AND available >= $1`, l.Quantity, l.ProductID)
	if err != nil {
		return false, fmt.Errorf("reserve %d of %s: %w", l.Quantity, l.ProductID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("reserve %d of %s: %w", l.Quantity, l.ProductID, err)
	}
	return n == 1, nil
}

func (t txStore) Untake(ctx context.Context, l domain.Line) error {
	return t.move(ctx, `UPDATE stock SET reserved = reserved - $1, available = available + $1
	WHERE product_id = $2 AND reserved >= $1`, "release", l)
}

func (t txStore) Sell(ctx context.Context, l domain.Line) error {
	return t.move(ctx, `UPDATE stock SET reserved = reserved - $1, sold = sold + $1
	WHERE product_id = $2 AND reserved >= $1`, "sell", l)
}

func (t txStore) Unsell(ctx context.Context, l domain.Line) error {
	return t.move(ctx, `UPDATE stock SET sold = sold - $1, available = available + $1
	WHERE product_id = $2 AND sold >= $1`, "unsell", l)
}

func (t txStore) move(ctx context.Context, query, verb string, l domain.Line) error {
	res, err := t.tx.ExecContext(ctx, query, l.Quantity, l.ProductID)
	if err != nil {
		return fmt.Errorf("%s %d of %s: %w", verb, l.Quantity, l.ProductID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%s %d of %s: %w: fewer units than that", verb, l.Quantity, l.ProductID, domain.ErrInvalidQuantity)
	}
	return nil
}

func (t txStore) QueueEvent(ctx context.Context, e app.Outgoing) error {
	typ, payload, err := encode(e.Msg)
	if err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO inventory_outbox (id, order_id, subject, type, payload, create_time)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, e.ID, e.OrderID, e.Subject, typ, payload, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("queue event %s: %w", e.ID, err)
	}
	return nil
}

// encode stores a message as its full type name and base64 wire bytes: TEXT is the
// one column type both dialects read back byte for byte.
func encode(m proto.Message) (typ, payload string, err error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return "", "", fmt.Errorf("marshal %T: %w", m, err)
	}
	return string(m.ProtoReflect().Descriptor().FullName()), base64.StdEncoding.EncodeToString(b), nil
}

func decode(typ, payload string) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return nil, fmt.Errorf("unknown type %s: %w", typ, err)
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("unmarshal %s: %w", typ, err)
	}
	return msg, nil
}
