package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/domain"
)

// HistoryEntry is one event of an order's history, for display.
type HistoryEntry struct {
	Version    int64
	Type       string
	Time       time.Time
	Summary    string
	StateAfter domain.State
}

// OrderAt is an order as of one version, with the times of its first and last event.
type OrderAt struct {
	Order   *domain.Order
	Created time.Time
	Updated time.Time
}

// Queries answers questions from an order's event stream (not from read models), so
// the answers are exact and include the past.
type Queries struct{ repo *Repository }

// NewQueries returns the handler; it panics on a nil repository.
func NewQueries(repo *Repository) Queries {
	if repo == nil {
		panic("order queries: nil repository")
	}
	return Queries{repo: repo}
}

// CheckOwner returns nil when userID's order orderID exists in the event store, which
// the read models may not show yet. It returns ErrUnauthenticated without a user,
// ErrNotFound when the order does not exist or belongs to another user (the same
// error, so a caller learns nothing of other users' orders), and event-store or
// decoding errors wrapped.
func (q Queries) CheckOwner(ctx context.Context, userID, orderID string) error {
	if userID == "" {
		return ErrUnauthenticated
	}
	// An order's owner never changes, so a cached order (one this instance just
	// placed, typically) answers as well as the store.
	o, ok := q.repo.cached(orderID)
	if !ok {
		var err error
		if o, err = q.repo.Load(ctx, orderID); err != nil {
			return err
		}
	}
	if !o.OwnedBy(userID) {
		return fmt.Errorf("order %q: %w", orderID, ErrNotFound)
	}
	return nil
}

// History returns the events of userID's order orderID with the state after each.
// It returns ErrUnauthenticated without a user, ErrNotFound when the order does not
// exist or belongs to another user, and event-store or decoding errors wrapped.
func (q Queries) History(ctx context.Context, userID, orderID string) ([]HistoryEntry, error) {
	if userID == "" {
		return nil, ErrUnauthenticated
	}
	events, err := q.repo.History(ctx, orderID)
	if err != nil {
		return nil, err
	}
	var o domain.Order
	out := make([]HistoryEntry, 0, len(events))
	for _, re := range events {
		if err := fold(&o, re.Event); err != nil {
			return nil, fmt.Errorf("history of order %q: event %d: %w", orderID, re.Version, err)
		}
		if re.Event == nil {
			continue // a saga step the order does not show
		}
		out = append(out, HistoryEntry{
			Version:    re.Version,
			Type:       domain.EventType(re.Event),
			Time:       re.Time,
			Summary:    Summary(re.Event),
			StateAfter: o.State(),
		})
	}
	if !o.OwnedBy(userID) {
		return nil, fmt.Errorf("history of order %q: %w", orderID, ErrNotFound)
	}
	return out, nil
}

// At returns userID's order orderID as it was right after version. It returns
// ErrUnauthenticated without a user, ErrNotFound when the order does not exist or
// belongs to another user, ErrVersionOutOfRange when version is below 1 or beyond
// the last event, and event-store or decoding errors wrapped.
func (q Queries) At(ctx context.Context, userID, orderID string, version int64) (OrderAt, error) {
	if userID == "" {
		return OrderAt{}, ErrUnauthenticated
	}
	events, err := q.repo.History(ctx, orderID)
	if err != nil {
		return OrderAt{}, err
	}
	o := &domain.Order{}
	var at OrderAt
	for _, re := range events {
		if re.Version > version {
			break
		}
		if err := fold(o, re.Event); err != nil {
			return OrderAt{}, fmt.Errorf("order %q at %d: event %d: %w", orderID, version, re.Version, err)
		}
		if re.Version == 1 {
			at.Created = re.Time
		}
		at.Updated = re.Time
	}
	// Ownership first: a stranger must not learn how long the history is.
	if !o.OwnedBy(userID) {
		return OrderAt{}, fmt.Errorf("order %q: %w", orderID, ErrNotFound)
	}
	if version < 1 || version > int64(len(events)) {
		return OrderAt{}, fmt.Errorf("order %q has %d versions, asked for %d: %w", orderID, len(events), version, ErrVersionOutOfRange)
	}
	at.Order = o
	return at, nil
}

// Summary describes an event in one human sentence.
func Summary(e domain.Event) string {
	switch ev := e.(type) {
	case *orderv1.OrderPlaced:
		units := int32(0)
		for _, l := range ev.GetLines() {
			units += l.GetQuantity()
		}
		return fmt.Sprintf("Order placed: %d line(s), %d item(s), total %s", len(ev.GetLines()), units, money(ev.GetTotal().GetMinorUnits(), ev.GetTotal().GetCurrencyCode()))
	case *orderv1.OrderPaymentAuthorized:
		return fmt.Sprintf("Payment %s authorized for %s", ev.GetPaymentId(), money(ev.GetAmount().GetMinorUnits(), ev.GetAmount().GetCurrencyCode()))
	case *orderv1.OrderInventoryReserved:
		return fmt.Sprintf("Stock reserved (reservation %s)", ev.GetReservationId())
	case *orderv1.OrderShipmentCreated:
		if ev.GetTrackingId() != "" {
			return fmt.Sprintf("Shipment %s created, tracking %s", ev.GetShipmentId(), ev.GetTrackingId())
		}
		return fmt.Sprintf("Shipment %s created", ev.GetShipmentId())
	case *orderv1.OrderPaymentCaptured:
		return fmt.Sprintf("Payment %s captured: %s", ev.GetPaymentId(), money(ev.GetAmount().GetMinorUnits(), ev.GetAmount().GetCurrencyCode()))
	case *orderv1.OrderCompleted:
		return "Order completed"
	case *orderv1.OrderCancelling:
		who := "a failed fulfilment step"
		if ev.GetRequestedByUser() {
			who = "the customer"
		}
		return fmt.Sprintf("Cancellation requested by %s: %s", who, ev.GetReason())
	case *orderv1.OrderCancelled:
		return fmt.Sprintf("Order cancelled: %s", ev.GetReason())
	default:
		return strings.TrimPrefix(string(proto.MessageName(e)), "eventshop.order.v1.")
	}
}

// money renders minor units with two decimals; exact, since it only moves digits.
// Currencies with another number of decimals still read sensibly in an audit view.
func money(units int64, currency string) string {
	sign := ""
	if units < 0 {
		sign, units = "-", -units
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, units/100, units%100, currency)
}
