package domain

import (
	"fmt"

	"github.com/eventshop/eventshop/pkg/money"
)

// Money is the shop's one amount type: minor units of a currency (pkg/money).
type Money = money.Money

// Errors of Money's arithmetic, matched by the order's commands.
var (
	ErrCurrencyMismatch = money.ErrCurrencyMismatch
	ErrOverflow         = money.ErrOverflow
)

// NewMoney returns units of currency; it checks nothing, ValidateMoney does.
func NewMoney(units int64, currency string) Money { return money.New(units, currency) }

// ValidateMoney returns ErrInvalidOrder unless m's currency is an ISO-4217 code and
// its amount is not negative.
func ValidateMoney(m Money) error {
	if !money.ValidCurrency(m.Currency) {
		return fmt.Errorf("currency %q is not an ISO-4217 code: %w", m.Currency, ErrInvalidOrder)
	}
	if m.Units < 0 {
		return fmt.Errorf("amount %s is negative: %w", m, ErrInvalidOrder)
	}
	return nil
}
