// Package app decides the payment commands sent by the order saga: each handler asks
// the card provider outside any transaction, then returns the Decision that applies
// the domain's money rules inside the participant runtime's batch transaction and
// names the one reply event. The runtime (pkg/participant) stores the reply with the
// command's inbox record, so a resend gets the same reply and moves no money.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/money"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/services/payment/domain"
	"github.com/eventshop/eventshop/services/payment/provider"
)

// Subjects of the commands handled and the events replied.
const (
	SubjectAuthorize     = "cmd.payment.authorize"
	SubjectCapture       = "cmd.payment.capture"
	SubjectVoid          = "cmd.payment.void"
	SubjectRefund        = "cmd.payment.refund"
	SubjectAuthorized    = "evt.payment.authorized"
	SubjectDeclined      = "evt.payment.declined"
	SubjectCaptured      = "evt.payment.captured"
	SubjectCaptureFailed = "evt.payment.capture_failed"
	SubjectVoided        = "evt.payment.voided"
	SubjectRefunded      = "evt.payment.refunded"
	// SubjectRefundFailed carries RefundFailed: the refund was refused.
	SubjectRefundFailed = "evt.payment.refund_failed"
)

// Reply is the event a command is answered with. The participant runtime stores it
// with the command's inbox record, so a resent command gets the very same event.
type Reply = messaging.Reply

// Decision is a command's effect and reply, decided inside the batch transaction.
type Decision = participant.Decision[Tx]

// Store keeps payments; the participant runtime keeps the inbox and replies.
type Store interface {
	// Payment returns domain.ErrNotFound for an unknown id.
	Payment(ctx context.Context, id string) (domain.Payment, error)
	// PaymentByOrder returns domain.ErrNotFound when the order has no payment.
	PaymentByOrder(ctx context.Context, orderID string) (domain.Payment, error)
}

// Tx is a payment store's view of the batch transaction a Decision runs in.
type Tx interface {
	// PaymentByOrder returns nil (and no error) when the order has no payment.
	PaymentByOrder(ctx context.Context, orderID string) (*domain.Payment, error)
	// SavePayment inserts or updates p (keyed by its id); it returns
	// domain.ErrIllegalState for a payment breaking a money invariant.
	SavePayment(ctx context.Context, p domain.Payment) error
}

// Handlers handles the payment commands and queries. Build it with New.
type Handlers struct {
	store     Store
	provider  provider.Provider
	validator protovalidate.Validator
	logger    *slog.Logger
	now       func() time.Time
}

// New returns handlers over store and the card provider. It panics on a nil
// dependency: that is a wiring mistake.
func New(store Store, p provider.Provider, logger *slog.Logger) *Handlers {
	if store == nil || p == nil {
		panic("payment app: nil store or provider")
	}
	if logger == nil {
		logger = slog.Default()
	}
	v, err := protovalidate.New()
	if err != nil {
		panic("payment app: protovalidate: " + err.Error())
	}
	return &Handlers{store: store, provider: p, validator: v, logger: logger, now: time.Now}
}

// ReplyID is the event id of the reply to the command commandID. It is derived from
// the command id, so a reply published twice is deduplicated by JetStream.
func ReplyID(commandID string) string {
	return uuid.NewSHA1(replyNamespace, []byte(commandID)).String()
}

var replyNamespace = uuid.MustParse("0d7f3a8e-2b61-4f0a-9a53-6c1e7b2d4f90")

// Payment returns a payment by id, or domain.ErrNotFound.
func (h *Handlers) Payment(ctx context.Context, id string) (domain.Payment, error) {
	return h.store.Payment(ctx, id)
}

// PaymentByOrder returns an order's payment, or domain.ErrNotFound (also for the
// tombstone of an order compensated before anything was authorized).
func (h *Handlers) PaymentByOrder(ctx context.Context, orderID string) (domain.Payment, error) {
	p, err := h.store.PaymentByOrder(ctx, orderID)
	if err != nil {
		return domain.Payment{}, err
	}
	if p.Status == domain.StatusVoided && p.Authorized == 0 {
		return domain.Payment{}, fmt.Errorf("order %s: %w", orderID, domain.ErrNotFound)
	}
	return p, nil
}

// AuthorizePayment holds the amount on the card and replies PaymentAuthorized, or
// PaymentDeclined for a final refusal (declined card, invalid command, order already
// compensated). An order is authorized at most once: a new command for an order that
// has a payment answers with that payment. It returns an error, so the command is
// redelivered with backoff, when the provider fails transiently (ErrProcessing) or the
// store fails.
func (h *Handlers) AuthorizePayment(ctx context.Context, m messaging.Message, cmd *paymentv1.AuthorizePayment) (Decision, error) {
	orderID := cmd.GetOrderId()
	amount := money.FromProto(cmd.GetAmount())
	declined := func(code, reason string) Reply {
		return Reply{Subject: SubjectDeclined, Msg: &paymentv1.PaymentDeclined{OrderId: orderID, Code: code, Reason: reason}}
	}

	var (
		auth    provider.Authorization
		decline *provider.DeclineError
		invalid error
	)
	if err := h.validator.Validate(cmd); err != nil {
		invalid = err
	} else if _, err := domain.Authorized("", orderID, amount, "", time.Time{}); err != nil {
		invalid = err
	} else if _, err := h.store.PaymentByOrder(ctx, orderID); errors.Is(err, domain.ErrNotFound) {
		// Only an order without a payment goes to the network; the key makes a
		// redelivery after a crash return the first answer.
		auth, err = h.provider.Authorize(ctx, provider.AuthorizeRequest{
			IdempotencyKey: m.ID, OrderID: orderID, Amount: amount.Units, Currency: amount.Currency, Token: cmd.GetPaymentToken(),
		})
		if err != nil && !errors.As(err, &decline) {
			return nil, fmt.Errorf("authorize order %s: %w", orderID, err)
		}
	} else if err != nil {
		return nil, err
	}

	return func(ctx context.Context, tx Tx) (Reply, error) {
		if invalid != nil {
			return declined("invalid_request", invalid.Error()), nil
		}
		current, err := tx.PaymentByOrder(ctx, orderID)
		if err != nil {
			return Reply{}, err
		}
		if current != nil {
			return replyForExisting(*current, orderID), nil
		}
		now := h.now().UTC()
		if decline != nil {
			p := domain.Declined(newID(), orderID, amount.Currency, decline.Code, decline.Reason, now)
			p.UserID = cmd.GetUserId()
			if err := tx.SavePayment(ctx, p); err != nil {
				return Reply{}, err
			}
			return declined(decline.Code, decline.Reason), nil
		}
		p, err := domain.Authorized(newID(), orderID, amount, auth.CardBrand, now)
		if err != nil {
			return Reply{}, err
		}
		p.UserID = cmd.GetUserId()
		if err := tx.SavePayment(ctx, p); err != nil {
			return Reply{}, err
		}
		return authorizedReply(p), nil
	}, nil
}

// replyForExisting answers an authorization for an order that already has a payment.
func replyForExisting(p domain.Payment, orderID string) Reply {
	switch p.Status {
	case domain.StatusDeclined:
		return Reply{Subject: SubjectDeclined, Msg: &paymentv1.PaymentDeclined{OrderId: orderID, Code: p.DeclineCode, Reason: p.DeclineReason}}
	case domain.StatusVoided, domain.StatusRefunded:
		return Reply{Subject: SubjectDeclined, Msg: &paymentv1.PaymentDeclined{OrderId: orderID, Code: "order_cancelled", Reason: domain.ErrCancelled.Error()}}
	}
	return authorizedReply(p)
}

func authorizedReply(p domain.Payment) Reply {
	return Reply{Subject: SubjectAuthorized, Msg: &paymentv1.PaymentAuthorized{OrderId: p.OrderID, PaymentId: p.ID, Amount: money.New(p.Authorized, p.Currency).Proto()}}
}

// CapturePayment takes the amount of the order's authorization and replies
// PaymentCaptured, or PaymentCaptureFailed when the rules forbid it (no authorization,
// more than authorized, voided, another currency). Capturing again the amount already
// captured succeeds without moving money. It returns an error, so the command is
// redelivered, when the provider fails transiently or the store fails.
func (h *Handlers) CapturePayment(ctx context.Context, m messaging.Message, cmd *paymentv1.CapturePayment) (Decision, error) {
	orderID := cmd.GetOrderId()
	amount := money.FromProto(cmd.GetAmount())
	failed := func(paymentID, reason string) (Reply, error) {
		return Reply{Subject: SubjectCaptureFailed, Msg: &paymentv1.PaymentCaptureFailed{OrderId: orderID, PaymentId: paymentID, Reason: reason}}, nil
	}
	invalid := h.validator.Validate(cmd)
	if invalid == nil {
		if cur, err := h.store.PaymentByOrder(ctx, orderID); err == nil {
			if _, changed, err := cur.Capture(amount, h.now()); err == nil && changed {
				if err := h.provider.Capture(ctx, m.ID, cur.ID, amount.Units); err != nil {
					return nil, fmt.Errorf("capture order %s: %w", orderID, err)
				}
			}
		} else if !errors.Is(err, domain.ErrNotFound) {
			return nil, err
		}
	}
	return func(ctx context.Context, tx Tx) (Reply, error) {
		if invalid != nil {
			return failed(cmd.GetPaymentId(), "invalid command: "+invalid.Error())
		}
		cur, err := tx.PaymentByOrder(ctx, orderID)
		if err != nil {
			return Reply{}, err
		}
		if cur == nil || (cur.Status == domain.StatusVoided && cur.Authorized == 0) {
			return failed(cmd.GetPaymentId(), "order has no authorization")
		}
		if cmd.GetPaymentId() != cur.ID {
			return failed(cmd.GetPaymentId(), fmt.Sprintf("payment %s is not the payment of order %s", cmd.GetPaymentId(), orderID))
		}
		next, changed, err := cur.Capture(amount, h.now().UTC())
		if err != nil {
			return failed(cur.ID, err.Error())
		}
		if changed {
			if err := tx.SavePayment(ctx, next); err != nil {
				return Reply{}, err
			}
		}
		return Reply{Subject: SubjectCaptured, Msg: &paymentv1.PaymentCaptured{OrderId: orderID, PaymentId: next.ID, Amount: money.New(next.Captured, next.Currency).Proto()}}, nil
	}, nil
}

// VoidAuthorization releases the order's hold and replies AuthorizationVoided, also
// when there was nothing to void (then a tombstone refuses a later authorization). A
// captured payment is refunded in full instead, so a compensated order keeps no
// charge. It returns Permanent for a command without a valid order id, and an error
// (redelivery) when the provider fails transiently or the store fails.
func (h *Handlers) VoidAuthorization(ctx context.Context, m messaging.Message, cmd *paymentv1.VoidAuthorization) (Decision, error) {
	if err := h.validator.Validate(cmd); err != nil {
		return nil, messaging.Permanent(fmt.Errorf("invalid VoidAuthorization: %w", err))
	}
	orderID := cmd.GetOrderId()
	if cur, err := h.store.PaymentByOrder(ctx, orderID); err == nil {
		if _, refund, changed := cur.Void(h.now()); changed {
			if refund > 0 {
				err = h.provider.Refund(ctx, m.ID, cur.ID, refund)
			} else {
				err = h.provider.Void(ctx, m.ID, cur.ID)
			}
			if err != nil {
				return nil, fmt.Errorf("void order %s: %w", orderID, err)
			}
		}
	} else if !errors.Is(err, domain.ErrNotFound) {
		return nil, err
	}
	return func(ctx context.Context, tx Tx) (Reply, error) {
		cur, err := tx.PaymentByOrder(ctx, orderID)
		if err != nil {
			return Reply{}, err
		}
		now := h.now().UTC()
		var next domain.Payment
		changed := true
		if cur == nil {
			next = domain.VoidedTombstone(newID(), orderID, now)
		} else {
			next, _, changed = cur.Void(now)
		}
		if changed {
			if err := tx.SavePayment(ctx, next); err != nil {
				return Reply{}, err
			}
		}
		id := next.ID
		if cur == nil {
			id = cmd.GetPaymentId()
		}
		return Reply{Subject: SubjectVoided, Msg: &paymentv1.AuthorizationVoided{OrderId: orderID, PaymentId: id}}, nil
	}, nil
}

// RefundPayment returns captured money and replies PaymentRefunded with the amount
// this command returned (0 when there was nothing to refund: no payment, only an
// authorization, which is voided, or a payment already refunded in full). A refund
// exceeding what is captured and not yet refunded (or in another currency) is
// refused: nothing is returned and the reply is RefundFailed with the reason, stored
// like any reply so a resend gets the same one. An invalid command returns Permanent
// (dead-lettered). It returns an error (redelivery) when the provider fails
// transiently or the store fails.
func (h *Handlers) RefundPayment(ctx context.Context, m messaging.Message, cmd *paymentv1.RefundPayment) (Decision, error) {
	if err := h.validator.Validate(cmd); err != nil {
		return nil, messaging.Permanent(fmt.Errorf("invalid RefundPayment: %w", err))
	}
	orderID := cmd.GetOrderId()
	amount := money.FromProto(cmd.GetAmount())
	if cur, err := h.store.PaymentByOrder(ctx, orderID); err == nil {
		next, refund, changed, err := cur.Refund(amount, h.now())
		if err != nil && !refused(err) {
			return nil, messaging.Permanent(fmt.Errorf("refund order %s: %w", orderID, err))
		}
		if err == nil && changed { // a refusal is recorded below, without the provider
			if refund > 0 {
				err = h.provider.Refund(ctx, m.ID, cur.ID, refund)
			} else if next.Status == domain.StatusVoided {
				err = h.provider.Void(ctx, m.ID, cur.ID)
			}
			if err != nil {
				return nil, fmt.Errorf("refund order %s: %w", orderID, err)
			}
		}
	} else if !errors.Is(err, domain.ErrNotFound) {
		return nil, err
	}
	return func(ctx context.Context, tx Tx) (Reply, error) {
		cur, err := tx.PaymentByOrder(ctx, orderID)
		if err != nil {
			return Reply{}, err
		}
		now := h.now().UTC()
		if cur == nil {
			if err := tx.SavePayment(ctx, domain.VoidedTombstone(newID(), orderID, now)); err != nil {
				return Reply{}, err
			}
			return Reply{Subject: SubjectRefunded, Msg: &paymentv1.PaymentRefunded{OrderId: orderID, PaymentId: cmd.GetPaymentId(), Amount: money.New(0, amount.Currency).Proto()}}, nil
		}
		next, refund, changed, err := cur.Refund(amount, now)
		if refused(err) {
			return Reply{Subject: SubjectRefundFailed, Msg: &paymentv1.RefundFailed{OrderId: orderID, PaymentId: cur.ID, Reason: err.Error()}}, nil
		}
		if err != nil {
			return Reply{}, messaging.Permanent(err)
		}
		if changed {
			if err := tx.SavePayment(ctx, next); err != nil {
				return Reply{}, err
			}
		}
		currency := next.Currency
		if currency == "" {
			currency = amount.Currency
		}
		return Reply{Subject: SubjectRefunded, Msg: &paymentv1.PaymentRefunded{OrderId: orderID, PaymentId: next.ID, Amount: money.New(refund, currency).Proto()}}, nil
	}, nil
}

// refused reports whether err is the domain refusing a refund (a reply), rather than
// a fault.
func refused(err error) bool {
	return errors.Is(err, domain.ErrOverRefund) || errors.Is(err, domain.ErrCurrencyMismatch) ||
		errors.Is(err, domain.ErrInvalidAmount) || errors.Is(err, domain.ErrIllegalState)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
