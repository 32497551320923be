// Package money is the one amount type of the services' domains: minor units of an
// ISO-4217 currency, never a float, with overflow-checked arithmetic, and the one
// place where it becomes the API's eventshop.common.v1.Money and back.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
)

var (
	// ErrCurrencyMismatch reports arithmetic or a comparison between two currencies.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrOverflow reports an amount that does not fit in int64 minor units.
	ErrOverflow = errors.New("money overflow")
)

// Money is an amount in the currency's minor unit (cents for USD), so sums are exact.
// The zero value is no amount in no currency.
type Money struct {
	Units    int64  `json:"units"`    // minor units
	Currency string `json:"currency"` // ISO-4217, upper case
}

// New returns units of currency; it checks nothing (ValidCurrency does).
func New(units int64, currency string) Money { return Money{Units: units, Currency: currency} }

// Add returns m + o. It returns ErrCurrencyMismatch when the currencies differ and
// ErrOverflow when the sum does not fit.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("add %s to %s: %w", o, m, ErrCurrencyMismatch)
	}
	sum := m.Units + o.Units
	// Signed overflow happened iff both operands share a sign the sum does not.
	if (m.Units > 0 && o.Units > 0 && sum < 0) || (m.Units < 0 && o.Units < 0 && sum >= 0) {
		return Money{}, fmt.Errorf("add %s to %s: %w", o, m, ErrOverflow)
	}
	return Money{Units: sum, Currency: m.Currency}, nil
}

// Mul returns m * n. It returns ErrOverflow when the product does not fit.
func (m Money) Mul(n int64) (Money, error) {
	if m.Units == 0 || n == 0 {
		return Money{Units: 0, Currency: m.Currency}, nil
	}
	p := m.Units * n
	if p/n != m.Units || (m.Units == -1 && n == math.MinInt64) || (n == -1 && m.Units == math.MinInt64) {
		return Money{}, fmt.Errorf("multiply %s by %d: %w", m, n, ErrOverflow)
	}
	return Money{Units: p, Currency: m.Currency}, nil
}

// Equal reports whether m and o are the same amount in the same currency.
func (m Money) Equal(o Money) bool { return m == o }

// IsZero reports whether m is the zero value (no amount, no currency).
func (m Money) IsZero() bool { return m == Money{} }

// String renders minor units, e.g. "1299 USD"; it never divides, so it never rounds.
func (m Money) String() string { return strconv.FormatInt(m.Units, 10) + " " + m.Currency }

// ValidCurrency reports whether c is shaped like an ISO-4217 code: three upper-case
// ASCII letters.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range 3 {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// FromProto returns the amount of p; nil is the zero Money.
func FromProto(p *commonv1.Money) Money {
	return Money{Units: p.GetMinorUnits(), Currency: p.GetCurrencyCode()}
}

// Proto returns m as the API's Money.
func (m Money) Proto() *commonv1.Money {
	return &commonv1.Money{MinorUnits: m.Units, CurrencyCode: m.Currency}
}
