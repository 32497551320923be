// Package app decides the inventory commands sent by the order saga, and handles the
// stock queries and the expiry of forgotten reservations: each command handler returns
// the Decision that applies the domain's rules inside the participant runtime's batch
// transaction and names the one reply event, which the runtime (pkg/participant)
// stores so a resend gets the same reply.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/services/inventory/domain"
)

// Subjects of the commands handled and the events published.
const (
	SubjectReserve   = "cmd.inventory.reserve"
	SubjectCommit    = "cmd.inventory.commit"
	SubjectRelease   = "cmd.inventory.release"
	SubjectReserved  = "evt.inventory.reserved"
	SubjectRejected  = "evt.inventory.rejected"
	SubjectCommitted = "evt.inventory.committed"
	// SubjectCommitFailed carries ReservationCommitFailed: nothing could be sold.
	SubjectCommitFailed = "evt.inventory.commit_failed"
	SubjectReleased     = "evt.inventory.released"
	SubjectExpired      = "evt.inventory.expired"
)

// Reply is an event to publish: the answer to a command, which the participant
// runtime stores with the command's inbox record so a resend gets the very same
// event, or an expiry notice.
type Reply = messaging.Reply

// Decision is a command's effect and reply, decided inside the batch transaction.
type Decision = participant.Decision[Tx]

// Outgoing is an event queued in the store (the outbox) until it is published.
type Outgoing struct {
	ID      string
	OrderID string
	Reply
}

// Store keeps stock, reservations and the outbox of expiry events; the participant
// runtime keeps the inbox and replies.
type Store interface {
	// Update runs fn in a transaction. It returns fn's error or the database error.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// DueReservations returns the order ids of at most limit held reservations whose
	// expiry time is not after now.
	DueReservations(ctx context.Context, now time.Time, limit int) ([]string, error)
	// PendingEvents returns at most limit queued events, oldest first.
	PendingEvents(ctx context.Context, limit int) ([]Outgoing, error)
	// DeleteEvent removes a published event from the outbox.
	DeleteEvent(ctx context.Context, id string) error
	// Stock returns domain.ErrNotFound for a product without stock.
	Stock(ctx context.Context, productID string) (domain.Stock, error)
	// ListStock returns at most limit products after the product id after, in order.
	ListStock(ctx context.Context, after string, limit int) ([]domain.Stock, error)
	// SetAvailable sets a product's available units, creating its stock if needed,
	// and adds the difference to its total stocked.
	SetAvailable(ctx context.Context, productID string, available int64) (domain.Stock, error)
	// Seed creates stock of units for each product that has none; existing stock is
	// never changed. It returns how many products it created.
	Seed(ctx context.Context, productIDs []string, units int64) (int, error)
}

// Tx is an inventory store's view of a transaction: the batch transaction a
// Decision runs in, or Update's. Its stock moves are
// conditional updates: they never take a count below zero, whatever runs at once.
type Tx interface {
	// ReservationByOrder returns nil (and no error) when the order has none.
	ReservationByOrder(ctx context.Context, orderID string) (*domain.Reservation, error)
	// SaveReservation inserts or updates r (its lines are written when it is new).
	SaveReservation(ctx context.Context, r domain.Reservation) error
	// Take moves l.Quantity units from available to reserved; ok is false, and nothing
	// changes, when fewer are available or the product has no stock.
	Take(ctx context.Context, l domain.Line) (ok bool, err error)
	// Untake moves reserved units back to available.
	Untake(ctx context.Context, l domain.Line) error
	// Sell moves reserved units to sold.
	Sell(ctx context.Context, l domain.Line) error
	// Unsell moves sold units back to available.
	Unsell(ctx context.Context, l domain.Line) error
	// QueueEvent puts an event in the outbox, published after the commit.
	QueueEvent(ctx context.Context, e Outgoing) error
}

// Publisher publishes events; *messaging.Bus is one.
type Publisher interface {
	PublishEvent(ctx context.Context, subject, id string, msg proto.Message, opts ...messaging.SendOption) (string, error)
}

var _ Publisher = (*messaging.Bus)(nil)

// Handlers handles the inventory commands, queries and expiry. Build it with New.
type Handlers struct {
	store     Store
	pub       Publisher
	ttl       time.Duration
	validator protovalidate.Validator
	logger    *slog.Logger
	now       func() time.Time
}

// New returns handlers over store and pub holding reservations for ttl. It panics on
// a nil dependency or a non-positive ttl: that is a wiring mistake.
func New(store Store, pub Publisher, ttl time.Duration, logger *slog.Logger) *Handlers {
	if store == nil || pub == nil || ttl <= 0 {
		panic("inventory app: nil store or publisher, or no reservation ttl")
	}
	if logger == nil {
		logger = slog.Default()
	}
	v, err := protovalidate.New()
	if err != nil {
		panic("inventory app: protovalidate: " + err.Error())
	}
	return &Handlers{store: store, pub: pub, ttl: ttl, validator: v, logger: logger, now: time.Now}
}

// ReplyID is the event id of the reply to the command commandID. It is derived from
// the command id, so a reply published twice is deduplicated by JetStream.
func ReplyID(commandID string) string {
	return uuid.NewSHA1(replyNamespace, []byte(commandID)).String()
}

var replyNamespace = uuid.MustParse("9c4e1f7a-3d52-4b8e-8f06-2a7b5c9d1e34")

// Reserve returns the decision that holds every line of an order or nothing and
// replies InventoryReserved, or InventoryRejected naming the products short. An order
// that already has a reservation is answered from it. It returns ErrInvalidQuantity
// for bad lines.
func (h *Handlers) Reserve(orderID string, lines []domain.Line) (Decision, error) {
	lines, err := domain.Lines(lines)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, tx Tx) (Reply, error) {
		cur, err := tx.ReservationByOrder(ctx, orderID)
		if err != nil {
			return Reply{}, err
		}
		if cur != nil {
			return replyForExisting(*cur), nil
		}
		var taken []domain.Line
		var short []string
		for _, l := range lines { // sorted by product id: rows are locked in one order
			ok, err := tx.Take(ctx, l)
			if err != nil {
				return Reply{}, err
			}
			if ok {
				taken = append(taken, l)
			} else {
				short = append(short, l.ProductID)
			}
		}
		if len(short) > 0 {
			for _, l := range taken {
				if err := tx.Untake(ctx, l); err != nil {
					return Reply{}, err
				}
			}
			return rejected(orderID, "insufficient stock for "+strings.Join(short, ", "), short), nil
		}
		r := domain.NewReservation(newID(), orderID, lines, h.now().UTC(), h.ttl)
		if err := tx.SaveReservation(ctx, r); err != nil {
			return Reply{}, err
		}
		return reservedReply(r), nil
	}, nil
}

func replyForExisting(r domain.Reservation) Reply {
	switch r.Status {
	case domain.StatusReleased:
		return rejected(r.OrderID, "the order's inventory was released", nil)
	case domain.StatusExpired:
		return rejected(r.OrderID, "the order's reservation expired", nil)
	}
	return reservedReply(r)
}

func rejected(orderID, reason string, products []string) Reply {
	return Reply{Subject: SubjectRejected, Msg: &inventoryv1.InventoryRejected{OrderId: orderID, Reason: reason, ProductIds: products}}
}

func reservedReply(r domain.Reservation) Reply {
	items := make([]*commonv1.LineItem, len(r.Lines))
	for i, l := range r.Lines {
		items[i] = &commonv1.LineItem{ProductId: l.ProductID, Quantity: int32(l.Quantity)}
	}
	return Reply{Subject: SubjectReserved, Msg: &inventoryv1.InventoryReserved{
		OrderId: r.OrderID, ReservationId: r.ID, Items: items, ExpireTime: timestamppb.New(r.ExpireTime),
	}}
}

// ReserveInventory handles cmd.inventory.reserve (see Reserve). An invalid command is
// rejected.
func (h *Handlers) ReserveInventory(_ context.Context, _ messaging.Message, cmd *inventoryv1.ReserveInventory) (Decision, error) {
	if verr := h.validator.Validate(cmd); verr != nil {
		return func(context.Context, Tx) (Reply, error) {
			return rejected(cmd.GetOrderId(), "invalid command: "+verr.Error(), nil), nil
		}, nil
	}
	lines := make([]domain.Line, len(cmd.GetItems()))
	for i, it := range cmd.GetItems() {
		lines[i] = domain.Line{ProductID: it.GetProductId(), Quantity: int64(it.GetQuantity())}
	}
	d, err := h.Reserve(cmd.GetOrderId(), lines)
	if err != nil {
		return nil, fmt.Errorf("reserve for order %s: %w", cmd.GetOrderId(), err)
	}
	return d, nil
}

// CommitReservation turns the order's held units into sold ones and replies
// ReservationCommitted (also for a repeat). A reservation that expired is sold if
// all its units are still available. A commit that cannot be honoured (no
// reservation, a released one, or an expired one whose units are gone) sells nothing
// and replies ReservationCommitFailed with the reason, so the saga compensates
// instead of waiting; a resend gets the same reply. An invalid command returns
// Permanent (dead-lettered).
func (h *Handlers) CommitReservation(_ context.Context, _ messaging.Message, cmd *inventoryv1.CommitReservation) (Decision, error) {
	if err := h.validator.Validate(cmd); err != nil {
		return nil, messaging.Permanent(fmt.Errorf("invalid CommitReservation: %w", err))
	}
	orderID := cmd.GetOrderId()
	return func(ctx context.Context, tx Tx) (Reply, error) {
		return h.commit(ctx, tx, orderID)
	}, nil
}

// commit sells the order's reservation inside tx and returns the reply; a refusal is
// a ReservationCommitFailed reply, not an error, so it is stored with the inbox record.
func (h *Handlers) commit(ctx context.Context, tx Tx, orderID string) (Reply, error) {
	r, err := tx.ReservationByOrder(ctx, orderID)
	if err != nil {
		return Reply{}, err
	}
	if r == nil {
		return commitFailed(orderID, "the order has no reservation"), nil
	}
	now := h.now().UTC()
	if r.Status == domain.StatusExpired {
		// Late but not lost: sell the units if they are still available.
		revived, short, err := h.revive(ctx, tx, *r, now)
		if err != nil {
			return Reply{}, err
		}
		if short != "" {
			return commitFailed(orderID, "the reservation expired and "+short+" is no longer available"), nil
		}
		r = &revived
	}
	next, changed, err := r.Commit(now)
	if errors.Is(err, domain.ErrIllegalState) {
		return commitFailed(orderID, "the reservation was "+r.Status.String()), nil
	}
	if err != nil {
		return Reply{}, err
	}
	if changed {
		for _, l := range r.Lines {
			if err := tx.Sell(ctx, l); err != nil {
				return Reply{}, err
			}
		}
		if err := tx.SaveReservation(ctx, next); err != nil {
			return Reply{}, err
		}
	}
	return Reply{Subject: SubjectCommitted, Msg: &inventoryv1.ReservationCommitted{OrderId: orderID, ReservationId: r.ID}}, nil
}

func commitFailed(orderID, reason string) Reply {
	return Reply{Subject: SubjectCommitFailed, Msg: &inventoryv1.ReservationCommitFailed{OrderId: orderID, Reason: reason}}
}

// revive takes an expired reservation's units back from available, all or nothing.
// short names a product no longer available (nothing was taken then); err is the
// store's error.
func (h *Handlers) revive(ctx context.Context, tx Tx, r domain.Reservation, now time.Time) (revived domain.Reservation, short string, err error) {
	var taken []domain.Line
	for _, l := range r.Lines {
		ok, err := tx.Take(ctx, l)
		if err != nil {
			return r, "", err
		}
		if !ok {
			for _, t := range taken {
				if err := tx.Untake(ctx, t); err != nil {
					return r, "", err
				}
			}
			return r, l.ProductID, nil
		}
		taken = append(taken, l)
	}
	revived, err = r.Revive(now)
	return revived, "", err
}

// ReleaseInventory gives the order's units back, held or sold (see
// domain.Reservation.Release), and replies InventoryReleased, also when nothing was
// held (then a tombstone refuses a later reserve or commit). It returns
// Permanent for a command without a valid order id.
func (h *Handlers) ReleaseInventory(_ context.Context, _ messaging.Message, cmd *inventoryv1.ReleaseInventory) (Decision, error) {
	if err := h.validator.Validate(cmd); err != nil {
		return nil, messaging.Permanent(fmt.Errorf("invalid ReleaseInventory: %w", err))
	}
	orderID := cmd.GetOrderId()
	return func(ctx context.Context, tx Tx) (Reply, error) {
		r, err := tx.ReservationByOrder(ctx, orderID)
		if err != nil {
			return Reply{}, err
		}
		now := h.now().UTC()
		if r == nil {
			if err := tx.SaveReservation(ctx, domain.Tombstone(newID(), orderID, now)); err != nil {
				return Reply{}, err
			}
			return Reply{Subject: SubjectReleased, Msg: &inventoryv1.InventoryReleased{OrderId: orderID}}, nil
		}
		if next, from, changed := r.Release(now); changed {
			giveBack := tx.Untake
			if from == domain.StatusCommitted {
				giveBack = tx.Unsell
			}
			for _, l := range r.Lines {
				if err := giveBack(ctx, l); err != nil {
					return Reply{}, err
				}
			}
			if err := tx.SaveReservation(ctx, next); err != nil {
				return Reply{}, err
			}
		}
		return Reply{Subject: SubjectReleased, Msg: &inventoryv1.InventoryReleased{OrderId: orderID, ReservationId: r.ID}}, nil
	}, nil
}

// ExpireDue releases the held reservations past their expiry time, each in its own
// transaction that also queues its ReservationExpired event, then publishes the
// queued events. It returns how many reservations expired and the first store error;
// an event that cannot be published stays queued for the next call.
func (h *Handlers) ExpireDue(ctx context.Context) (int, error) {
	now := h.now().UTC()
	orders, err := h.store.DueReservations(ctx, now, 100)
	if err != nil {
		return 0, err
	}
	expired := 0
	for _, orderID := range orders {
		err := h.store.Update(ctx, func(ctx context.Context, tx Tx) error {
			r, err := tx.ReservationByOrder(ctx, orderID)
			if err != nil || r == nil {
				return err
			}
			next, changed := r.Expire(now)
			if !changed {
				return nil // committed or released since it was listed
			}
			for _, l := range r.Lines {
				if err := tx.Untake(ctx, l); err != nil {
					return err
				}
			}
			if err := tx.SaveReservation(ctx, next); err != nil {
				return err
			}
			expired++
			return tx.QueueEvent(ctx, Outgoing{ID: ReplyID("expired:" + r.ID), OrderID: orderID, Reply: Reply{
				Subject: SubjectExpired, Msg: &inventoryv1.ReservationExpired{OrderId: orderID, ReservationId: r.ID},
			}})
		})
		if err != nil {
			return expired, fmt.Errorf("expire reservation of order %s: %w", orderID, err)
		}
	}
	return expired, h.flush(ctx)
}

// flush publishes the outbox; an event is deleted only after JetStream stored it.
func (h *Handlers) flush(ctx context.Context) error {
	events, err := h.store.PendingEvents(ctx, 100)
	if err != nil {
		return err
	}
	for _, e := range events {
		if _, err := h.pub.PublishEvent(ctx, e.Subject, e.ID, e.Msg, messaging.WithSubject(e.OrderID)); err != nil {
			return fmt.Errorf("publish %s: %w", e.ID, err)
		}
		if err := h.store.DeleteEvent(ctx, e.ID); err != nil {
			return err
		}
	}
	return nil
}

// Stock returns one product's stock, or domain.ErrNotFound.
func (h *Handlers) Stock(ctx context.Context, productID string) (domain.Stock, error) {
	return h.store.Stock(ctx, productID)
}

// ListStock returns at most limit products after the product id after, in order.
func (h *Handlers) ListStock(ctx context.Context, after string, limit int) ([]domain.Stock, error) {
	return h.store.ListStock(ctx, after, limit)
}

// SetStock sets a product's available units (an admin's count; authorization is the
// transport's job). It returns domain.ErrInvalidQuantity for a negative count.
func (h *Handlers) SetStock(ctx context.Context, productID string, available int64) (domain.Stock, error) {
	if _, err := (domain.Stock{ProductID: productID}).SetAvailable(available); err != nil {
		return domain.Stock{}, err
	}
	return h.store.SetAvailable(ctx, productID, available)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
