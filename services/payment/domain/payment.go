// Package domain holds the money rules of a payment: what may be authorized,
// captured, voided and refunded, and that no amount ever goes negative or exceeds
// the one before it (captured <= authorized, refunded <= captured). It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/eventshop/eventshop/pkg/money"
)

var (
	// ErrNotFound means there is no such payment.
	ErrNotFound = errors.New("payment not found")
	// ErrInvalidAmount means an amount is not positive or its currency is malformed.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrCurrencyMismatch means an amount is not in the payment's currency.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrOverCapture means a capture exceeds what was authorized.
	ErrOverCapture = errors.New("capture exceeds authorization")
	// ErrOverRefund means a refund exceeds what was captured and not yet refunded.
	ErrOverRefund = errors.New("refund exceeds capture")
	// ErrIllegalState means the payment's status does not allow the operation, e.g.
	// capturing a voided authorization.
	ErrIllegalState = errors.New("illegal payment state")
	// ErrCancelled means the order's payment was voided before anything was
	// authorized: a late authorization must not take money for a cancelled order.
	ErrCancelled = errors.New("payment cancelled")
)

// Status is where a payment's money stands.
type Status int

const (
	StatusAuthorized Status = iota + 1
	StatusDeclined
	StatusCaptured
	StatusVoided
	StatusRefunded
)

func (s Status) String() string {
	switch s {
	case StatusAuthorized:
		return "authorized"
	case StatusDeclined:
		return "declined"
	case StatusCaptured:
		return "captured"
	case StatusVoided:
		return "voided"
	case StatusRefunded:
		return "refunded"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Money is the shop's one amount type: minor units of a currency (pkg/money).
type Money = money.Money

// positive returns ErrInvalidAmount unless m is more than nothing in an ISO-4217 currency.
func positive(m Money) error {
	if m.Units <= 0 || !money.ValidCurrency(m.Currency) {
		return fmt.Errorf("%w: %s", ErrInvalidAmount, m)
	}
	return nil
}

// Payment holds the running amounts of one order's payment. Amounts are in minor
// units of Currency; 0 <= Refunded <= Captured <= Authorized always holds.
type Payment struct {
	ID      string
	OrderID string
	// UserID owns the order; only they and admins may read the payment. Empty for
	// payments made before it was recorded: those are for admins only.
	UserID        string
	Status        Status
	Currency      string
	Authorized    int64
	Captured      int64
	Refunded      int64
	CardBrand     string
	DeclineReason string
	DeclineCode   string
	CreateTime    time.Time
	UpdateTime    time.Time
}

// Check reports a broken money invariant as ErrIllegalState; storage calls it before
// every write, and the SQL schema enforces the same rules again.
func (p Payment) Check() error {
	if p.Authorized < 0 || p.Captured < 0 || p.Refunded < 0 || p.Captured > p.Authorized || p.Refunded > p.Captured {
		return fmt.Errorf("%w: payment %s authorized %d captured %d refunded %d", ErrIllegalState, p.ID, p.Authorized, p.Captured, p.Refunded)
	}
	return nil
}

// Authorized returns a new authorized payment of amount. It returns ErrInvalidAmount.
func Authorized(id, orderID string, amount Money, brand string, now time.Time) (Payment, error) {
	if err := positive(amount); err != nil {
		return Payment{}, err
	}
	return Payment{ID: id, OrderID: orderID, Status: StatusAuthorized, Currency: amount.Currency,
		Authorized: amount.Units, CardBrand: brand, CreateTime: now, UpdateTime: now}, nil
}

// Declined returns a payment the provider refused; it holds no money.
func Declined(id, orderID, currency, code, reason string, now time.Time) Payment {
	return Payment{ID: id, OrderID: orderID, Status: StatusDeclined, Currency: currency,
		DeclineCode: code, DeclineReason: reason, CreateTime: now, UpdateTime: now}
}

// VoidedTombstone is the payment of an order compensated before anything was
// authorized; it stays so a late authorization is refused.
func VoidedTombstone(id, orderID string, now time.Time) Payment {
	return Payment{ID: id, OrderID: orderID, Status: StatusVoided, CreateTime: now, UpdateTime: now}
}

// Capture takes amount of the authorization. Capturing again exactly what was
// captured is a repeat and changes nothing (changed is false). It returns
// ErrInvalidAmount, ErrCurrencyMismatch, ErrOverCapture, or ErrIllegalState when the
// payment is not authorized (declined, voided, refunded, or captured another amount).
func (p Payment) Capture(amount Money, now time.Time) (next Payment, changed bool, err error) {
	if err := p.sameCurrency(amount); err != nil {
		return p, false, err
	}
	switch {
	case p.Status == StatusCaptured && amount.Units == p.Captured:
		return p, false, nil
	case p.Status != StatusAuthorized:
		return p, false, fmt.Errorf("%w: capture a %s payment", ErrIllegalState, p.Status)
	case amount.Units > p.Authorized:
		return p, false, fmt.Errorf("%w: capture %s of %d authorized", ErrOverCapture, amount, p.Authorized)
	}
	p.Captured = amount.Units
	p.Status = StatusCaptured
	p.UpdateTime = now
	return p, true, p.Check()
}

// Void releases an uncaptured authorization. Voiding a captured payment refunds what
// is left of the capture, so a compensated order never keeps a charge. Voiding a
// declined, voided or fully refunded payment changes nothing (changed is false);
// refund is what Void added to Refunded.
func (p Payment) Void(now time.Time) (next Payment, refund int64, changed bool) {
	switch p.Status {
	case StatusAuthorized:
		p.Status = StatusVoided
	case StatusCaptured, StatusRefunded:
		refund = p.Captured - p.Refunded
		if refund == 0 {
			return p, 0, false
		}
		p.Refunded = p.Captured
		p.Status = StatusRefunded
	default:
		return p, 0, false
	}
	p.UpdateTime = now
	return p, refund, true
}

// Refund returns amount of the capture. A payment that was never captured has nothing
// to refund: an authorization is voided instead and refund is 0; a fully refunded one
// changes nothing, so a repeated compensation succeeds. It returns
// ErrInvalidAmount, ErrCurrencyMismatch, or ErrOverRefund when amount exceeds what is
// captured and not yet refunded.
func (p Payment) Refund(amount Money, now time.Time) (next Payment, refund int64, changed bool, err error) {
	switch p.Status {
	case StatusAuthorized:
		p.Status = StatusVoided
		p.UpdateTime = now
		return p, 0, true, nil
	case StatusDeclined, StatusVoided:
		return p, 0, false, nil
	}
	if err := p.sameCurrency(amount); err != nil {
		return p, 0, false, err
	}
	left := p.Captured - p.Refunded
	if left == 0 {
		// Everything is back with the customer: a repeated compensation, nothing to do.
		return p, 0, false, nil
	}
	if amount.Units > left {
		return p, 0, false, fmt.Errorf("%w: refund %s of %d captured, %d refunded", ErrOverRefund, amount, p.Captured, p.Refunded)
	}
	p.Refunded += amount.Units
	p.Status = StatusRefunded
	p.UpdateTime = now
	return p, amount.Units, true, p.Check()
}

func (p Payment) sameCurrency(amount Money) error {
	if err := positive(amount); err != nil {
		return err
	}
	if p.Currency != "" && amount.Currency != p.Currency {
		return fmt.Errorf("%w: %s on a %s payment", ErrCurrencyMismatch, amount.Currency, p.Currency)
	}
	return nil
}
