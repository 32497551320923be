package domain_test

import (
	"errors"
	"math"
	"testing"

	"github.com/eventshop/eventshop/services/order/domain"
)

func TestMoneyAdd(t *testing.T) {
	tests := []struct {
		name    string
		a, b    domain.Money
		want    domain.Money
		wantErr error
	}{
		{name: "sum", a: usd(1_299), b: usd(1), want: usd(1_300)},
		{name: "negative", a: usd(5), b: usd(-7), want: usd(-2)},
		{name: "currencies differ", a: usd(1), b: domain.Money{Units: 1, Currency: "EUR"}, wantErr: domain.ErrCurrencyMismatch},
		{name: "zero value is no currency", a: usd(0), b: domain.Money{}, wantErr: domain.ErrCurrencyMismatch},
		{name: "overflow up", a: usd(math.MaxInt64), b: usd(1), wantErr: domain.ErrOverflow},
		{name: "overflow down", a: usd(math.MinInt64), b: usd(-1), wantErr: domain.ErrOverflow},
		{name: "edge fits", a: usd(math.MaxInt64 - 1), b: usd(1), want: usd(math.MaxInt64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Add(tt.b)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("%s + %s = %s, want %s", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestMoneyMul(t *testing.T) {
	tests := []struct {
		name    string
		m       domain.Money
		n       int64
		want    domain.Money
		wantErr error
	}{
		{name: "product", m: usd(1_299), n: 3, want: usd(3_897)},
		{name: "by zero keeps currency", m: usd(1_299), n: 0, want: usd(0)},
		{name: "zero amount", m: usd(0), n: math.MaxInt64, want: usd(0)},
		{name: "overflow", m: usd(math.MaxInt64/2 + 1), n: 2, wantErr: domain.ErrOverflow},
		{name: "min by minus one", m: usd(math.MinInt64), n: -1, wantErr: domain.ErrOverflow},
		{name: "minus one by min", m: usd(-1), n: math.MinInt64, wantErr: domain.ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.Mul(tt.n)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("%s * %d = %s, want %s", tt.m, tt.n, got, tt.want)
			}
		})
	}
}

func TestMoneyValidate(t *testing.T) {
	for _, m := range []domain.Money{usd(0), usd(1), {Units: 5, Currency: "EUR"}} {
		if err := m.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", m, err)
		}
	}
	for _, m := range []domain.Money{usd(-1), {Units: 1}, {Units: 1, Currency: "usd"}, {Units: 1, Currency: "USDT"}} {
		if err := m.Validate(); !errors.Is(err, domain.ErrInvalidOrder) {
			t.Errorf("Validate(%s) = %v, want ErrInvalidOrder", m, err)
		}
	}
}
