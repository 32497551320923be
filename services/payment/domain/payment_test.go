package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventshop/eventshop/services/payment/domain"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func usd(u int64) domain.Money { return domain.Money{Units: u, Currency: "USD"} }

func authorized(t *testing.T, units int64) domain.Payment {
	t.Helper()
	p, err := domain.Authorized("p1", "o1", usd(units), "visa", now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthorizedRejectsBadAmounts(t *testing.T) {
	t.Parallel()
	for _, m := range []domain.Money{usd(0), usd(-1), {Units: 100, Currency: "usd"}, {Units: 100}} {
		if _, err := domain.Authorized("p", "o", m, "visa", now); !errors.Is(err, domain.ErrInvalidAmount) {
			t.Errorf("Authorized(%v): err = %v, want ErrInvalidAmount", m, err)
		}
	}
}

func TestCapture(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		payment     func(t *testing.T) domain.Payment
		amount      domain.Money
		wantErr     error
		wantChanged bool
		wantCapture int64
	}{
		{name: "full", payment: func(t *testing.T) domain.Payment { return authorized(t, 1000) }, amount: usd(1000), wantChanged: true, wantCapture: 1000},
		{name: "partial", payment: func(t *testing.T) domain.Payment { return authorized(t, 1000) }, amount: usd(400), wantChanged: true, wantCapture: 400},
		{name: "more than authorized", payment: func(t *testing.T) domain.Payment { return authorized(t, 1000) }, amount: usd(1001), wantErr: domain.ErrOverCapture},
		{name: "zero", payment: func(t *testing.T) domain.Payment { return authorized(t, 1000) }, amount: usd(0), wantErr: domain.ErrInvalidAmount},
		{name: "negative", payment: func(t *testing.T) domain.Payment { return authorized(t, 1000) }, amount: usd(-5), wantErr: domain.ErrInvalidAmount},
		{name: "other currency", payment: func(t *testing.T) domain.Payment { return authorized(t, 1000) }, amount: domain.Money{Units: 10, Currency: "EUR"}, wantErr: domain.ErrCurrencyMismatch},
		{name: "repeat of the same capture", payment: func(t *testing.T) domain.Payment {
			p, _, err := authorized(t, 1000).Capture(usd(700), now)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}, amount: usd(700), wantCapture: 700},
		{name: "second, different capture", payment: func(t *testing.T) domain.Payment {
			p, _, _ := authorized(t, 1000).Capture(usd(700), now)
			return p
		}, amount: usd(300), wantErr: domain.ErrIllegalState, wantCapture: 700},
		{name: "voided", payment: func(t *testing.T) domain.Payment {
			p, _, _ := authorized(t, 1000).Void(now)
			return p
		}, amount: usd(100), wantErr: domain.ErrIllegalState},
		{name: "declined", payment: func(*testing.T) domain.Payment {
			return domain.Declined("p", "o", "USD", "card_declined", "declined", now)
		}, amount: usd(100), wantErr: domain.ErrIllegalState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := tt.payment(t).Capture(tt.amount, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if changed != tt.wantChanged || got.Captured != tt.wantCapture {
				t.Fatalf("changed %v captured %d, want %v %d", changed, got.Captured, tt.wantChanged, tt.wantCapture)
			}
			if err := got.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRefund(t *testing.T) {
	t.Parallel()
	captured, _, err := authorized(t, 1000).Capture(usd(800), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := captured.Refund(usd(801), now); !errors.Is(err, domain.ErrOverRefund) {
		t.Fatalf("refund over capture: err = %v, want ErrOverRefund", err)
	}
	if _, _, _, err := captured.Refund(usd(0), now); !errors.Is(err, domain.ErrInvalidAmount) {
		t.Fatalf("refund 0: err = %v, want ErrInvalidAmount", err)
	}
	p, refund, changed, err := captured.Refund(usd(300), now)
	if err != nil || !changed || refund != 300 || p.Refunded != 300 || p.Status != domain.StatusRefunded {
		t.Fatalf("partial refund = %+v %d %v %v", p, refund, changed, err)
	}
	if _, _, _, err := p.Refund(usd(501), now); !errors.Is(err, domain.ErrOverRefund) {
		t.Fatalf("second refund over the rest: err = %v, want ErrOverRefund", err)
	}
	p, refund, _, err = p.Refund(usd(500), now)
	if err != nil || refund != 500 || p.Refunded != 800 {
		t.Fatalf("refund of the rest = %+v %d %v", p, refund, err)
	}
	// Fully refunded: a repeated compensation is a no-op, not an error.
	if again, refund, changed, err := p.Refund(usd(800), now); err != nil || changed || refund != 0 || again.Refunded != 800 {
		t.Fatalf("repeat refund = %+v %d %v %v", again, refund, changed, err)
	}

	// Refunding an authorization that was never captured voids it.
	v, refund, changed, err := authorized(t, 1000).Refund(usd(1000), now)
	if err != nil || !changed || refund != 0 || v.Status != domain.StatusVoided {
		t.Fatalf("refund of an authorization = %+v %d %v %v", v, refund, changed, err)
	}
}

func TestVoid(t *testing.T) {
	t.Parallel()
	v, refund, changed := authorized(t, 1000).Void(now)
	if !changed || refund != 0 || v.Status != domain.StatusVoided {
		t.Fatalf("void = %+v %d %v", v, refund, changed)
	}
	if _, _, changed := v.Void(now); changed {
		t.Fatal("second void changed something")
	}
	captured, _, _ := authorized(t, 1000).Capture(usd(1000), now)
	r, refund, changed := captured.Void(now)
	if !changed || refund != 1000 || r.Refunded != 1000 || r.Status != domain.StatusRefunded {
		t.Fatalf("void of a capture = %+v %d %v; want a full refund", r, refund, changed)
	}
	if _, _, changed := domain.Declined("p", "o", "USD", "c", "r", now).Void(now); changed {
		t.Fatal("void of a declined payment changed something")
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	bad := []domain.Payment{
		{Authorized: -1},
		{Authorized: 10, Captured: 11},
		{Authorized: 10, Captured: 5, Refunded: 6},
	}
	for _, p := range bad {
		if err := p.Check(); !errors.Is(err, domain.ErrIllegalState) {
			t.Errorf("Check(%+v) = %v, want ErrIllegalState", p, err)
		}
	}
}
