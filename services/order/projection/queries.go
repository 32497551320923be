package projection

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/money"
	"github.com/eventshop/eventshop/pkg/sqldb"
)

var (
	// ErrNotFound is returned by GetOrder for an order the read model does not hold.
	ErrNotFound = errors.New("projection: order not found")
	// ErrInvalidPageToken is returned by ListOrdersByUser for a page token that is
	// malformed or was issued for another user or status filter.
	ErrInvalidPageToken = errors.New("projection: invalid page token")
)

// Page sizes of ListOrdersByUser.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// DefaultSalesLimit is the number of rows SalesByProduct returns for limit <= 0.
const DefaultSalesLimit = 100

// Queries answers the order service's read requests from the read models. It is safe
// for concurrent use and reads whatever tables are live, so it keeps serving while
// Rebuild replays and after it swaps: its statements name the live tables, which the
// database resolves again after a swap, whichever process made it, even for the
// compiled statements each connection keeps (see sqldb).
type Queries struct {
	db    *sqldb.DB
	sql   querySQL
	cache *OrderCache // nil: every GetOrder reads the database
}

// QueriesOption configures NewQueries.
type QueriesOption func(*Queries)

// WithOrderCache makes GetOrder answer from c the orders read recently; c must be
// told of every change to the orders table (OrderCache.Notifier), or it answers
// stale orders for up to its TTL.
func WithOrderCache(c *OrderCache) QueriesOption { return func(q *Queries) { q.cache = c } }

// querySQL is the text of every query, built once per set of tables.
type querySQL struct {
	get   string
	list  [4]string // indexed by listShape
	sales string
}

// listShape picks the variant of the listing query: with a status filter (1), after
// a cursor (2), both or neither.
func listShape(filtered, paged bool) int {
	n := 0
	if filtered {
		n |= 1
	}
	if paged {
		n |= 2
	}
	return n
}

func newQuerySQL(t tables) querySQL {
	q := querySQL{
		get: `SELECT ` + orderColumns + ` FROM ` + t.orders + ` WHERE id = $1`,
		sales: `SELECT product_id, name, units, revenue, currency FROM ` + t.sales + `
ORDER BY units DESC, product_id, currency LIMIT $1`,
	}
	for shape := range q.list {
		query, n := `SELECT `+orderColumns+` FROM `+t.orders+` WHERE user_id = $1`, 1
		if shape&1 != 0 {
			n++
			query += fmt.Sprintf(` AND status = $%d`, n)
		}
		if shape&2 != 0 {
			n += 2
			query += fmt.Sprintf(` AND (created_at < $%d OR (created_at = $%d AND id < $%d))`, n-1, n-1, n)
		}
		q.list[shape] = query + fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, n+1)
	}
	return q
}

// NewQueries returns the queries over db; Migrate (or a running Projector) creates
// the tables, and each statement is prepared on its first use. It panics on a nil
// db: that is a wiring mistake.
func NewQueries(db *sqldb.DB, opts ...QueriesOption) *Queries {
	if db == nil {
		panic("projection: nil db")
	}
	q := &Queries{db: db, sql: newQuerySQL(liveTables)}
	for _, o := range opts {
		o(q)
	}
	return q
}

const orderColumns = `id, user_id, status, lines, currency, subtotal, shipping, total, address,
	payment_id, shipment_id, tracking_id, cancel_reason, created_at, updated_at, version`

// GetOrder returns the order with id as the read model last saw it. It returns
// ErrNotFound when there is no such order (yet: the projection may lag the write
// side; see Projector.WaitFor) and the database error otherwise. The caller checks
// that the order belongs to the user asking.
func (q *Queries) GetOrder(ctx context.Context, id string) (*orderv1.Order, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("projection: get order %q: %w", id, err)
	}
	var epoch uint64
	if q.cache != nil {
		var row *orderRow
		if row, epoch = q.cache.get(id); row != nil {
			return row.order(), nil
		}
	}
	// A lookup by primary key takes microseconds: it runs without ctx's
	// cancellation, which database/sql and the SQLite driver would each watch with a
	// goroutine of their own per query, on the read path's hottest call.
	row, err := scanRow(q.db.QueryRowContext(context.WithoutCancel(ctx), q.sql.get, id))
	if errors.Is(err, sql.ErrNoRows) {
		// Not cached: the order may be projected any moment.
		return nil, fmt.Errorf("get order %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("projection: get order %q: %w", id, err)
	}
	if q.cache != nil {
		q.cache.put(row, epoch)
	}
	return row.order(), nil
}

// ListOrdersByUser returns a page of userID's orders, newest first (by placement time,
// then id), limited to status unless it is ORDER_STATUS_UNSPECIFIED, and the token of
// the next page ("" after the last page). pageSize <= 0 means DefaultPageSize and is
// capped at MaxPageSize. Pages are keyset-based: orders placed while a client pages
// appear before its cursor, so no page repeats or skips an order. It returns
// ErrInvalidPageToken for a malformed token or one issued for another user or
// status, and the database error otherwise.
func (q *Queries) ListOrdersByUser(ctx context.Context, userID string, status orderv1.OrderStatus, pageSize int, pageToken string) ([]*orderv1.Order, string, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	filter := filterKey(userID, status)

	filtered := status != orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
	args := []any{userID}
	if filtered {
		args = append(args, int32(status))
	}
	if pageToken != "" {
		c, err := decodeCursor(pageToken, filter)
		if err != nil {
			return nil, "", err
		}
		args = append(args, c.CreatedAt, c.ID)
	}
	args = append(args, pageSize+1)

	rows, err := q.db.QueryContext(ctx, q.sql.list[listShape(filtered, pageToken != "")], args...)
	if err != nil {
		return nil, "", fmt.Errorf("projection: list orders of %q: %w", userID, err)
	}
	defer rows.Close()
	var (
		out  []*orderv1.Order
		last cursor
	)
	for rows.Next() {
		o, created, err := scanOrder(rows)
		if err != nil {
			return nil, "", fmt.Errorf("projection: list orders of %q: %w", userID, err)
		}
		if len(out) == pageSize {
			return out, encodeCursor(last, filter), nil
		}
		out = append(out, o)
		last = cursor{CreatedAt: created, ID: o.GetId()}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("projection: list orders of %q: %w", userID, err)
	}
	return out, "", nil
}

// SalesByProduct returns units and revenue per product and currency from COMPLETED
// orders, best-selling first (by units, then product id). limit <= 0 means
// DefaultSalesLimit. It returns the database error.
func (q *Queries) SalesByProduct(ctx context.Context, limit int) ([]*orderv1.ProductSales, error) {
	if limit <= 0 {
		limit = DefaultSalesLimit
	}
	rows, err := q.db.QueryContext(ctx, q.sql.sales, limit)
	if err != nil {
		return nil, fmt.Errorf("projection: sales by product: %w", err)
	}
	defer rows.Close()
	var out []*orderv1.ProductSales
	for rows.Next() {
		s := &orderv1.ProductSales{Revenue: &commonv1.Money{}}
		if err := rows.Scan(&s.ProductId, &s.Name, &s.Units, &s.Revenue.MinorUnits, &s.Revenue.CurrencyCode); err != nil {
			return nil, fmt.Errorf("projection: sales by product: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projection: sales by product: %w", err)
	}
	return out, nil
}

// lineJSON and addressJSON are how lines and address are stored as JSON text;
// amounts are money.Money's JSON.
type lineJSON struct {
	ProductID string      `json:"product_id"`
	Name      string      `json:"name"`
	Quantity  int32       `json:"quantity"`
	UnitPrice money.Money `json:"unit_price"`
	LineTotal money.Money `json:"line_total"`
}

type addressJSON struct {
	Name        string `json:"name"`
	Street      string `json:"street"`
	City        string `json:"city"`
	PostalCode  string `json:"postal_code"`
	CountryCode string `json:"country_code"`
}

type scanner interface{ Scan(dest ...any) error }

// scanOrder reads one row of orderColumns and returns created_at as stored.
func scanOrder(r scanner) (*orderv1.Order, int64, error) {
	row, err := scanRow(r)
	if err != nil {
		return nil, 0, err
	}
	return row.order(), row.created, nil
}

// scanRow reads one row of orderColumns, its JSON columns decoded.
func scanRow(r scanner) (*orderRow, error) {
	var (
		row            orderRow
		lines, address string
	)
	err := r.Scan(&row.id, &row.userID, &row.status, &lines, &row.currency, &row.subtotal, &row.shipping, &row.total, &address,
		&row.paymentID, &row.shipmentID, &row.trackingID, &row.cancelReason, &row.created, &row.updated, &row.version)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(lines), &row.lines); err != nil {
		return nil, fmt.Errorf("order %s lines: %w", row.id, err)
	}
	if err := json.Unmarshal([]byte(address), &row.address); err != nil {
		return nil, fmt.Errorf("order %s address: %w", row.id, err)
	}
	return &row, nil
}

// orderRow is a row of the orders table, its JSON columns decoded.
type orderRow struct {
	id, userID, currency                            string
	status                                          int32
	lines                                           []lineJSON
	address                                         addressJSON
	subtotal, shipping, total                       int64
	paymentID, shipmentID, trackingID, cancelReason string
	created, updated, version                       int64
}

// order is the row as the API shows it: what GetOrder answers, and what the
// projector hands watchers of a new row (Change), built here for both.
func (row *orderRow) order() *orderv1.Order {
	o := &orderv1.Order{
		Id: row.id, UserId: row.userID, Status: orderv1.OrderStatus(row.status),
		PaymentId: row.paymentID, ShipmentId: row.shipmentID, TrackingId: row.trackingID, CancelReason: row.cancelReason,
		Version: row.version,
	}
	for _, l := range row.lines {
		o.Lines = append(o.Lines, &orderv1.OrderLine{
			ProductId: l.ProductID, Name: l.Name, Quantity: l.Quantity,
			UnitPrice: l.UnitPrice.Proto(), LineTotal: l.LineTotal.Proto(),
		})
	}
	a := row.address
	o.ShippingAddress = &commonv1.Address{Name: a.Name, Street: a.Street, City: a.City, PostalCode: a.PostalCode, CountryCode: a.CountryCode}
	o.Subtotal = money.New(row.subtotal, row.currency).Proto()
	o.ShippingCost = money.New(row.shipping, row.currency).Proto()
	o.Total = money.New(row.total, row.currency).Proto()
	o.CreateTime = rowTime(row.created)
	o.UpdateTime = rowTime(row.updated)
	return o
}

// rowTime is a time column (nanoseconds since the epoch) as the API shows it.
func rowTime(ns int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(0, ns).UTC()) }

// cursor is the position after the last row of a page.
type cursor struct {
	Filter    uint64 `json:"f"`
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

// filterKey binds a token to the listing it came from, so a token cannot be replayed
// against another user's orders or another status.
func filterKey(userID string, status orderv1.OrderStatus) uint64 {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", userID, status))
	return binary.BigEndian.Uint64(h[:8])
}

func encodeCursor(c cursor, filter uint64) string {
	c.Filter = filter
	b, _ := json.Marshal(c) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(token string, filter uint64) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return cursor{}, fmt.Errorf("%w: not base64url", ErrInvalidPageToken)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return cursor{}, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	if c.Filter != filter {
		return cursor{}, fmt.Errorf("%w: issued for another user or status filter", ErrInvalidPageToken)
	}
	return c, nil
}
