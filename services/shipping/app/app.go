// Package app handles the shipping commands sent by the order saga and the quote and
// shipment queries: it loads and stores through Store, asks the catalog for weights,
// and answers every command with exactly one reply event, the same one on a resend.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/services/shipping/domain"
)

// Subjects of the commands handled and the events replied.
const (
	SubjectCreate    = "cmd.shipping.create"
	SubjectCancel    = "cmd.shipping.cancel"
	SubjectCreated   = "evt.shipping.created"
	SubjectFailed    = "evt.shipping.failed"
	SubjectCancelled = "evt.shipping.cancelled"
)

// ErrUnknownProduct means the catalog does not know a product of the parcel.
var ErrUnknownProduct = errors.New("unknown product")

// Reply is the event a command was answered with. It is stored with the command's
// inbox record, so a resent command is answered with the very same event.
type Reply struct {
	Subject string
	Msg     proto.Message
}

// Store keeps shipments and replies. Implementations must run Execute's function and
// record the command id and its reply in one transaction.
type Store interface {
	// Execute runs fn in a transaction unless commandID was processed before, and
	// stores fn's reply with the inbox record. It returns the reply of the first run
	// (fn's, or the stored one for a duplicate), fn's error, or the database error.
	Execute(ctx context.Context, commandID string, fn func(ctx context.Context, tx Tx) (Reply, error)) (Reply, error)
	// StoredReply returns the reply already given to commandID; ok is false if none.
	// It returns the database error.
	StoredReply(ctx context.Context, commandID string) (r Reply, ok bool, err error)
	// ShipmentByOrder returns domain.ErrNotFound when the order has no shipment.
	ShipmentByOrder(ctx context.Context, orderID string) (domain.Shipment, error)
}

// Tx is the part of Store usable inside Execute.
type Tx interface {
	// ShipmentByOrder returns nil (and no error) when the order has no shipment.
	ShipmentByOrder(ctx context.Context, orderID string) (*domain.Shipment, error)
	// SaveShipment inserts or updates s (keyed by its order id).
	SaveShipment(ctx context.Context, s domain.Shipment) error
}

// Catalog returns the weight of one unit of each product. A product it does not know
// is missing from the map. Errors are the catalog's (e.g. a gRPC Unavailable).
type Catalog interface {
	Weights(ctx context.Context, productIDs []string) (map[string]int64, error)
}

// Publisher publishes reply events; *messaging.Bus is one.
type Publisher interface {
	PublishEvent(ctx context.Context, subject, id string, msg proto.Message, opts ...messaging.SendOption) (string, error)
}

var _ Publisher = (*messaging.Bus)(nil)

// Faults make CreateShipment fail on purpose. It is a test and chaos knob: a carrier
// that refuses parcels, so the saga's compensation path can be exercised. The zero
// value injects nothing.
type Faults struct {
	// FailRate is the share (0..1) of new CreateShipment commands answered with
	// ShipmentFailed.
	FailRate float64
	// Latency is added before every command is handled.
	Latency time.Duration
	// Hook, when set, is asked about every new CreateShipment; a non-nil error fails
	// it with the error's text as reason.
	Hook func(ctx context.Context, cmd *shippingv1.CreateShipment) error
}

// Handlers handles the shipping commands and queries. Build it with New.
type Handlers struct {
	store     Store
	catalog   Catalog
	pub       Publisher
	validator protovalidate.Validator
	logger    *slog.Logger
	now       func() time.Time

	mu     sync.Mutex
	faults Faults
}

// New returns handlers over store, catalog and pub. It panics on a nil dependency: that
// is a wiring mistake.
func New(store Store, catalog Catalog, pub Publisher, faults Faults, logger *slog.Logger) *Handlers {
	if store == nil || catalog == nil || pub == nil {
		panic("shipping app: nil store, catalog or publisher")
	}
	if logger == nil {
		logger = slog.Default()
	}
	v, err := protovalidate.New()
	if err != nil {
		panic("shipping app: protovalidate: " + err.Error())
	}
	return &Handlers{store: store, catalog: catalog, pub: pub, validator: v, logger: logger, now: time.Now, faults: faults}
}

// SetFaults replaces the injected faults; safe while commands are being handled.
func (h *Handlers) SetFaults(f Faults) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = f
}

func (h *Handlers) currentFaults() Faults {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults
}

// ReplyID is the event id of the reply to the command commandID. It is derived from
// the command id, so a reply published twice is deduplicated by JetStream.
func ReplyID(commandID string) string {
	return uuid.NewSHA1(replyNamespace, []byte(commandID)).String()
}

var replyNamespace = uuid.MustParse("5b0c4a52-6a55-4c36-9d1f-0b8f5c0e2a11")

// Quote prices a parcel of items to addr using the catalog's weights. It returns
// domain.ErrUnsupportedDestination (checked before calling the catalog),
// ErrUnknownProduct, domain.ErrBadItem, or the catalog's error.
func (h *Handlers) Quote(ctx context.Context, addr *commonv1.Address, items []*commonv1.LineItem) (domain.Quote, error) {
	if _, err := domain.ZoneFor(addr.GetCountryCode()); err != nil {
		return domain.Quote{}, err
	}
	ids := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if !seen[it.GetProductId()] {
			seen[it.GetProductId()] = true
			ids = append(ids, it.GetProductId())
		}
	}
	weights, err := h.catalog.Weights(ctx, ids)
	if err != nil {
		return domain.Quote{}, fmt.Errorf("catalog weights: %w", err)
	}
	parcel := make([]domain.Item, 0, len(items))
	var unknown []string
	for _, it := range items {
		w, ok := weights[it.GetProductId()]
		if !ok {
			unknown = append(unknown, it.GetProductId())
			continue
		}
		parcel = append(parcel, domain.Item{ProductID: it.GetProductId(), Quantity: int64(it.GetQuantity()), WeightGrams: w})
	}
	if len(unknown) > 0 {
		return domain.Quote{}, fmt.Errorf("%w: %s", ErrUnknownProduct, strings.Join(unknown, ", "))
	}
	return domain.QuoteParcel(addr.GetCountryCode(), parcel)
}

// Shipment returns an order's shipment, or domain.ErrNotFound (also for a tombstone:
// an order compensated before anything was booked has no shipment to show).
func (h *Handlers) Shipment(ctx context.Context, orderID string) (domain.Shipment, error) {
	s, err := h.store.ShipmentByOrder(ctx, orderID)
	if err != nil {
		return domain.Shipment{}, err
	}
	if s.TrackingID == "" {
		return domain.Shipment{}, fmt.Errorf("order %s: %w", orderID, domain.ErrNotFound)
	}
	return s, nil
}

// CreateShipment books a parcel and replies ShipmentCreated, or ShipmentFailed for a
// parcel that cannot be booked (bad command, unsupported destination, unknown product,
// cancelled order, injected fault). It returns an error, so the command is redelivered,
// only when the catalog, the store or the bus fails.
func (h *Handlers) CreateShipment(ctx context.Context, m messaging.Message, cmd *shippingv1.CreateShipment) error {
	if done, err := h.replayed(ctx, m, cmd.GetOrderId()); done || err != nil {
		return err
	}
	f := h.currentFaults()
	if err := sleep(ctx, f.Latency); err != nil {
		return err
	}
	failed := func(reason string) (Reply, error) {
		return Reply{Subject: SubjectFailed, Msg: &shippingv1.ShipmentFailed{OrderId: cmd.GetOrderId(), Reason: reason}}, nil
	}
	var quote domain.Quote
	var quoteErr error
	if err := h.validator.Validate(cmd); err != nil {
		quoteErr = fmt.Errorf("invalid command: %w", err)
	} else {
		quote, quoteErr = h.Quote(ctx, cmd.GetAddress(), cmd.GetItems())
		if quoteErr != nil && !isParcelError(quoteErr) {
			return quoteErr // the catalog is unreachable: try again later
		}
	}
	reply, err := h.store.Execute(ctx, m.ID, func(ctx context.Context, tx Tx) (Reply, error) {
		if quoteErr != nil {
			return failed(quoteErr.Error())
		}
		current, err := tx.ShipmentByOrder(ctx, cmd.GetOrderId())
		if err != nil {
			return Reply{}, err
		}
		if current == nil {
			if reason := injectedFailure(ctx, f, cmd); reason != "" {
				return failed(reason)
			}
		}
		s, created, err := domain.NewShipment(current, newID(), cmd.GetOrderId(), newTrackingID(), addressFrom(cmd.GetAddress()), quote, h.now().UTC())
		if errors.Is(err, domain.ErrCancelled) {
			return failed(err.Error())
		}
		if err != nil {
			return Reply{}, err
		}
		if created {
			if err := tx.SaveShipment(ctx, s); err != nil {
				return Reply{}, err
			}
		}
		return Reply{Subject: SubjectCreated, Msg: &shippingv1.ShipmentCreated{OrderId: s.OrderID, ShipmentId: s.ID, TrackingId: s.TrackingID}}, nil
	})
	if err != nil {
		return fmt.Errorf("create shipment for order %s: %w", cmd.GetOrderId(), err)
	}
	return h.publish(ctx, m, cmd.GetOrderId(), reply)
}

// CancelShipment cancels an order's parcel and replies ShipmentCancelled, also when
// nothing was booked (then a tombstone refuses a later create). It returns Permanent
// for a command without a valid order id, and the store's or bus's error otherwise.
func (h *Handlers) CancelShipment(ctx context.Context, m messaging.Message, cmd *shippingv1.CancelShipment) error {
	if err := h.validator.Validate(cmd); err != nil {
		return messaging.Permanent(fmt.Errorf("invalid CancelShipment: %w", err))
	}
	if done, err := h.replayed(ctx, m, cmd.GetOrderId()); done || err != nil {
		return err
	}
	if err := sleep(ctx, h.currentFaults().Latency); err != nil {
		return err
	}
	reply, err := h.store.Execute(ctx, m.ID, func(ctx context.Context, tx Tx) (Reply, error) {
		current, err := tx.ShipmentByOrder(ctx, cmd.GetOrderId())
		if err != nil {
			return Reply{}, err
		}
		s, changed := domain.Cancel(current, cmd.GetOrderId(), newID(), h.now().UTC())
		if changed {
			if err := tx.SaveShipment(ctx, s); err != nil {
				return Reply{}, err
			}
		}
		id := cmd.GetShipmentId()
		if s.TrackingID != "" {
			id = s.ID
		}
		return Reply{Subject: SubjectCancelled, Msg: &shippingv1.ShipmentCancelled{OrderId: s.OrderID, ShipmentId: id}}, nil
	})
	if err != nil {
		return fmt.Errorf("cancel shipment for order %s: %w", cmd.GetOrderId(), err)
	}
	return h.publish(ctx, m, cmd.GetOrderId(), reply)
}

// replayed re-publishes the stored reply of a command seen before; done reports
// whether there was one.
func (h *Handlers) replayed(ctx context.Context, m messaging.Message, orderID string) (done bool, err error) {
	r, ok, err := h.store.StoredReply(ctx, m.ID)
	if err != nil || !ok {
		return false, err
	}
	return true, h.publish(ctx, m, orderID, r)
}

func (h *Handlers) publish(ctx context.Context, m messaging.Message, orderID string, r Reply) error {
	if _, err := h.pub.PublishEvent(ctx, r.Subject, ReplyID(m.ID), r.Msg, messaging.WithSubject(orderID), messaging.CausedBy(m)); err != nil {
		return fmt.Errorf("reply to %s: %w", m.ID, err)
	}
	return nil
}

func isParcelError(err error) bool {
	return errors.Is(err, domain.ErrUnsupportedDestination) || errors.Is(err, domain.ErrBadItem) ||
		errors.Is(err, domain.ErrEmptyParcel) || errors.Is(err, ErrUnknownProduct)
}

func injectedFailure(ctx context.Context, f Faults, cmd *shippingv1.CreateShipment) string {
	if f.Hook != nil {
		if err := f.Hook(ctx, cmd); err != nil {
			return err.Error()
		}
	}
	if f.FailRate > 0 && rand.Float64() < f.FailRate {
		return "carrier refused the parcel (injected failure)"
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func addressFrom(a *commonv1.Address) domain.Address {
	return domain.Address{Name: a.GetName(), Street: a.GetStreet(), City: a.GetCity(), PostalCode: a.GetPostalCode(), CountryCode: a.GetCountryCode()}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// newTrackingID looks like a carrier's: two letters and twelve digits.
func newTrackingID() string {
	return fmt.Sprintf("ES%012d", rand.Int64N(1_000_000_000_000))
}
