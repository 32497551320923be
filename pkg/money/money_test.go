package money_test

import (
	"errors"
	"math"
	"testing"

	"github.com/eventshop/eventshop/pkg/money"
)

func usd(units int64) money.Money { return money.New(units, "USD") }

func TestAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, b    money.Money
		want    money.Money
		wantErr error
	}{
		{name: "sum", a: usd(1_299), b: usd(1), want: usd(1_300)},
		{name: "negative", a: usd(5), b: usd(-7), want: usd(-2)},
		{name: "currencies differ", a: usd(1), b: money.Money{Units: 1, Currency: "EUR"}, wantErr: money.ErrCurrencyMismatch},
		{name: "zero value is no currency", a: usd(0), b: money.Money{}, wantErr: money.ErrCurrencyMismatch},
		{name: "overflow up", a: usd(math.MaxInt64), b: usd(1), wantErr: money.ErrOverflow},
		{name: "overflow down", a: usd(math.MinInt64), b: usd(-1), wantErr: money.ErrOverflow},
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

func TestMul(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       money.Money
		n       int64
		want    money.Money
		wantErr error
	}{
		{name: "product", m: usd(1_299), n: 3, want: usd(3_897)},
		{name: "by zero keeps currency", m: usd(1_299), n: 0, want: usd(0)},
		{name: "zero amount", m: usd(0), n: math.MaxInt64, want: usd(0)},
		{name: "overflow", m: usd(math.MaxInt64/2 + 1), n: 2, wantErr: money.ErrOverflow},
		{name: "min by minus one", m: usd(math.MinInt64), n: -1, wantErr: money.ErrOverflow},
		{name: "minus one by min", m: usd(-1), n: math.MinInt64, wantErr: money.ErrOverflow},
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

func TestValidCurrency(t *testing.T) {
	t.Parallel()
	for c, want := range map[string]bool{"USD": true, "EUR": true, "": false, "usd": false, "USDT": false, "US": false, "U$D": false} {
		if got := money.ValidCurrency(c); got != want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", c, got, want)
		}
	}
}

func TestProtoRoundTrip(t *testing.T) {
	t.Parallel()
	m := usd(1_799)
	if got := money.FromProto(m.Proto()); got != m {
		t.Fatalf("FromProto(Proto(%s)) = %s", m, got)
	}
	if got := money.FromProto(nil); !got.IsZero() {
		t.Fatalf("FromProto(nil) = %s, want the zero Money", got)
	}
}
