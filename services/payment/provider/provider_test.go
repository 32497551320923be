package provider_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventshop/eventshop/services/payment/provider"
)

func TestSimulatedTokens(t *testing.T) {
	tests := []struct {
		token     string
		wantBrand string
		wantCode  string
		wantErr   error
	}{
		{token: provider.TokenVisa, wantBrand: "visa"},
		{token: provider.TokenMastercard, wantBrand: "mastercard"},
		{token: provider.TokenChargeDeclined, wantCode: "card_declined", wantErr: provider.ErrDeclined},
		{token: provider.TokenInsufficientFunds, wantCode: "insufficient_funds", wantErr: provider.ErrDeclined},
		{token: provider.TokenProcessingError, wantErr: provider.ErrProcessing},
		{token: "tok_nonsense", wantCode: "invalid_token", wantErr: provider.ErrDeclined},
	}
	p := &provider.Simulated{}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			a, err := p.Authorize(context.Background(), provider.AuthorizeRequest{IdempotencyKey: "k-" + tt.token, Amount: 100, Currency: "USD", Token: tt.token})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var d *provider.DeclineError
			if errors.As(err, &d) != (tt.wantCode != "") || (d != nil && d.Code != tt.wantCode) {
				t.Fatalf("decline = %v, want code %q", d, tt.wantCode)
			}
			if a.CardBrand != tt.wantBrand || (tt.wantErr == nil && a.Reference == "") {
				t.Fatalf("authorization = %+v", a)
			}
		})
	}
}

func TestSimulatedIdempotencyAndFaults(t *testing.T) {
	ctx := context.Background()
	p := &provider.Simulated{}
	a1, err1 := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "same", Token: provider.TokenVisa})
	a2, err2 := p.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "same", Token: provider.TokenMastercard})
	if err1 != nil || err2 != nil || a1 != a2 {
		t.Fatalf("same key answered %+v then %+v (%v, %v)", a1, a2, err1, err2)
	}

	broken := &provider.Simulated{FailRate: 1}
	if _, err := broken.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: "x", Token: provider.TokenVisa}); !errors.Is(err, provider.ErrProcessing) {
		t.Fatalf("fail rate 1: err = %v, want ErrProcessing", err)
	}
	if err := broken.Capture(ctx, "x", "ref", 1); !errors.Is(err, provider.ErrProcessing) {
		t.Fatalf("fail rate 1 capture: err = %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&provider.Simulated{}).Authorize(cancelled, provider.AuthorizeRequest{IdempotencyKey: "s", Token: provider.TokenSlow}); !errors.Is(err, context.Canceled) {
		t.Fatalf("slow card with a cancelled context: err = %v", err)
	}
}
