package domain

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

var (
	// ErrCurrencyMismatch reports arithmetic or a comparison between two currencies.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrOverflow reports an amount that does not fit in int64 minor units.
	ErrOverflow = errors.New("money overflow")
)

// Money is an amount in the currency's minor unit (cents for USD), never a float,
// so sums are exact.
type Money struct {
	Units    int64  `json:"units"`    // minor units
	Currency string `json:"currency"` // ISO-4217, upper case
}

// NewMoney returns units of currency; it checks nothing, Validate does.
func NewMoney(units int64, currency string) Money { return Money{Units: units, Currency: currency} }

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
	if m.Units != 0 && n != 0 {
		p := m.Units * n
		if p/n != m.Units || (m.Units == -1 && n == math.MinInt64) || (n == -1 && m.Units == math.MinInt64) {
			return Money{}, fmt.Errorf("multiply %s by %d: %w", m, n, ErrOverflow)
		}
		return Money{Units: p, Currency: m.Currency}, nil
	}
	return Money{Units: 0, Currency: m.Currency}, nil
}

// Equal reports whether m and o are the same amount in the same currency.
func (m Money) Equal(o Money) bool { return m == o }

// IsZero reports whether m is the zero value (no amount, no currency).
func (m Money) IsZero() bool { return m == Money{} }

// Validate returns ErrInvalidOrder unless the currency is three upper-case letters
// and the amount is not negative.
func (m Money) Validate() error {
	if !validCurrency(m.Currency) {
		return fmt.Errorf("currency %q is not an ISO-4217 code: %w", m.Currency, ErrInvalidOrder)
	}
	if m.Units < 0 {
		return fmt.Errorf("amount %s is negative: %w", m, ErrInvalidOrder)
	}
	return nil
}

// String renders minor units, e.g. "1299 USD"; it never divides, so it never rounds.
func (m Money) String() string { return strconv.FormatInt(m.Units, 10) + " " + m.Currency }

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}
