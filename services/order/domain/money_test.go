package domain_test

import (
	"errors"
	"testing"

	"github.com/eventshop/eventshop/services/order/domain"
)

func TestValidateMoney(t *testing.T) {
	t.Parallel()
	for _, m := range []domain.Money{usd(0), usd(1), {Units: 5, Currency: "EUR"}} {
		if err := domain.ValidateMoney(m); err != nil {
			t.Errorf("ValidateMoney(%s) = %v", m, err)
		}
	}
	for _, m := range []domain.Money{usd(-1), {Units: 1}, {Units: 1, Currency: "usd"}, {Units: 1, Currency: "USDT"}} {
		if err := domain.ValidateMoney(m); !errors.Is(err, domain.ErrInvalidOrder) {
			t.Errorf("ValidateMoney(%s) = %v, want ErrInvalidOrder", m, err)
		}
	}
}
