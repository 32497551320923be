// Package app decides the shipping commands sent by the order saga and answers the
// quote and shipment queries: each command handler asks the catalog and the carrier
// outside any transaction, then returns the Decision that stores the shipment inside
// the participant runtime's batch transaction and names the one reply event, which the
// runtime (pkg/participant) stores so a resend gets the same reply.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/services/shipping/carrier"
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

// Reply is the event a command is answered with. The participant runtime stores it
// with the command's inbox record, so a resent command gets the very same event.
type Reply = messaging.Reply

// Decision is a command's effect and reply, decided inside the batch transaction.
type Decision = participant.Decision[Tx]

// Store keeps shipments; the participant runtime keeps the inbox and replies.
type Store interface {
	// ShipmentByOrder returns domain.ErrNotFound when the order has no shipment.
	ShipmentByOrder(ctx context.Context, orderID string) (domain.Shipment, error)
}

// Tx is a shipping store's view of the batch transaction a Decision runs in.
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

// Handlers handles the shipping commands and queries. Build it with New.
type Handlers struct {
	store     Store
	catalog   Catalog
	carrier   carrier.Carrier
	validator protovalidate.Validator
	logger    *slog.Logger
	now       func() time.Time
}

// New returns handlers over store, catalog and the carrier. It panics on a nil
// dependency: that is a wiring mistake.
func New(store Store, catalog Catalog, c carrier.Carrier, logger *slog.Logger) *Handlers {
	if store == nil || catalog == nil || c == nil {
		panic("shipping app: nil store, catalog or carrier")
	}
	if logger == nil {
		logger = slog.Default()
	}
	v, err := protovalidate.New()
	if err != nil {
		panic("shipping app: protovalidate: " + err.Error())
	}
	return &Handlers{store: store, catalog: catalog, carrier: c, validator: v, logger: logger, now: time.Now}
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
// cancelled order, refused by the carrier). The catalog and the carrier are asked
// outside any transaction; the carrier only when the order has no shipment yet. It
// returns an error, so the command is redelivered, only when the catalog or the
// carrier fails transiently.
func (h *Handlers) CreateShipment(ctx context.Context, _ messaging.Message, cmd *shippingv1.CreateShipment) (Decision, error) {
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
			return nil, quoteErr // the catalog is unreachable: try again later
		}
	}
	var refusal *carrier.RefusedError
	if quoteErr == nil {
		if _, err := h.store.ShipmentByOrder(ctx, cmd.GetOrderId()); errors.Is(err, domain.ErrNotFound) {
			if err := h.carrier.Book(ctx, cmd); err != nil && !errors.As(err, &refusal) {
				return nil, fmt.Errorf("book parcel of order %s: %w", cmd.GetOrderId(), err)
			}
		} else if err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, tx Tx) (Reply, error) {
		if quoteErr != nil {
			return failed(quoteErr.Error())
		}
		current, err := tx.ShipmentByOrder(ctx, cmd.GetOrderId())
		if err != nil {
			return Reply{}, err
		}
		if current == nil && refusal != nil {
			return failed(refusal.Reason)
		}
		s, created, err := domain.NewShipment(current, newID(), cmd.GetOrderId(), newTrackingID(), addressFrom(cmd.GetAddress()), quote, h.now().UTC())
		if errors.Is(err, domain.ErrCancelled) {
			return failed(err.Error())
		}
		if err != nil {
			return Reply{}, err
		}
		if created {
			s.UserID = cmd.GetUserId()
			if err := tx.SaveShipment(ctx, s); err != nil {
				return Reply{}, err
			}
		}
		return Reply{Subject: SubjectCreated, Msg: &shippingv1.ShipmentCreated{OrderId: s.OrderID, ShipmentId: s.ID, TrackingId: s.TrackingID}}, nil
	}, nil
}

// CancelShipment cancels an order's parcel and replies ShipmentCancelled, also when
// nothing was booked (then a tombstone refuses a later create). It returns Permanent
// for a command without a valid order id, and the carrier's error (redelivery).
func (h *Handlers) CancelShipment(ctx context.Context, _ messaging.Message, cmd *shippingv1.CancelShipment) (Decision, error) {
	if err := h.validator.Validate(cmd); err != nil {
		return nil, messaging.Permanent(fmt.Errorf("invalid CancelShipment: %w", err))
	}
	if err := h.carrier.Cancel(ctx, cmd.GetOrderId()); err != nil {
		return nil, fmt.Errorf("cancel parcel of order %s: %w", cmd.GetOrderId(), err)
	}
	return func(ctx context.Context, tx Tx) (Reply, error) {
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
	}, nil
}

func isParcelError(err error) bool {
	return errors.Is(err, domain.ErrUnsupportedDestination) || errors.Is(err, domain.ErrBadItem) ||
		errors.Is(err, domain.ErrEmptyParcel) || errors.Is(err, ErrUnknownProduct)
}

func addressFrom(a *commonv1.Address) domain.Address {
	return domain.Address{Name: a.GetName(), Street: a.GetStreet(), City: a.GetCity(), PostalCode: a.GetPostalCode(), CountryCode: a.GetCountryCode()}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// newTrackingID looks like a carrier's: two letters and twelve digits.
func newTrackingID() string {
	return fmt.Sprintf("ES%012d", rand.Int64N(1_000_000_000_000))
}
