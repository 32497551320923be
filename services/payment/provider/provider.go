// Package provider talks to a card network on behalf of the payment service. Simulated
// is the built-in provider: a fake of a card network (a real one cannot be reached
// here) whose answers are chosen by the card token, like a real provider's test mode.
package provider

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/eventshop/eventshop/pkg/resilience"
)

var (
	// ErrDeclined means the card network refused the charge; it is final. Errors
	// wrapping it are *DeclineError.
	ErrDeclined = errors.New("payment declined")
	// ErrProcessing means the network failed to answer; the same request (same
	// idempotency key) may be sent again.
	ErrProcessing = errors.New("payment processing error")
)

// DeclineError is a final refusal with the network's code.
type DeclineError struct {
	// Code is machine readable, e.g. "card_declined" or "insufficient_funds".
	Code   string
	Reason string
}

func (e *DeclineError) Error() string { return fmt.Sprintf("declined (%s): %s", e.Code, e.Reason) }

// Is makes errors.Is(err, ErrDeclined) true for every decline.
func (e *DeclineError) Is(target error) bool { return target == ErrDeclined }

// AuthorizeRequest asks to hold Amount minor units of Currency on the card Token.
type AuthorizeRequest struct {
	// IdempotencyKey makes a resent request return the first answer; the payment
	// service passes the command id.
	IdempotencyKey string
	OrderID        string
	Amount         int64
	Currency       string
	Token          string
}

// Authorization is an accepted hold.
type Authorization struct {
	// Reference identifies the hold at the network, for capture, void and refund.
	Reference string
	CardBrand string
}

// Provider is a card network. Every method takes an idempotency key: sent again with
// the same key it must not move money twice. Errors wrap ErrDeclined (final) or
// ErrProcessing (retry with the same key), or are the context's.
type Provider interface {
	Authorize(ctx context.Context, req AuthorizeRequest) (Authorization, error)
	Capture(ctx context.Context, key, reference string, amount int64) error
	Void(ctx context.Context, key, reference string) error
	Refund(ctx context.Context, key, reference string, amount int64) error
}

// Test tokens understood by Simulated.
const (
	TokenVisa              = "tok_visa"
	TokenMastercard        = "tok_mastercard"
	TokenChargeDeclined    = "tok_chargeDeclined"
	TokenInsufficientFunds = "tok_insufficientFunds"
	TokenProcessingError   = "tok_processingError"
	TokenSlow              = "tok_slow"
	DefaultSlowDelay       = 3 * time.Second
	referencePrefix        = "sim_"
)

// Simulated is a fake card network for development, tests, load and chaos runs. Its
// answer to Authorize depends on the token:
//
//	tok_visa, tok_mastercard   approved (card brand visa, mastercard)
//	tok_chargeDeclined         declined, code card_declined (final)
//	tok_insufficientFunds      declined, code insufficient_funds (final)
//	tok_processingError        ErrProcessing every time (transient)
//	tok_slow                   approved after SlowDelay (visa)
//	anything else              declined, code invalid_token
//
// Latency is added to every call, and FailRate is the share of calls (any method)
// that fail with ErrProcessing before doing anything. It is safe for concurrent use.
type Simulated struct {
	Latency   time.Duration
	FailRate  float64
	SlowDelay time.Duration

	mu    sync.Mutex
	auths map[string]Authorization
}

var _ Provider = (*Simulated)(nil)

// Authorize implements Provider. A resent key returns the first authorization.
func (s *Simulated) Authorize(ctx context.Context, req AuthorizeRequest) (Authorization, error) {
	if err := s.call(ctx); err != nil {
		return Authorization{}, err
	}
	s.mu.Lock()
	a, ok := s.auths[req.IdempotencyKey]
	s.mu.Unlock()
	if ok {
		return a, nil
	}
	switch req.Token {
	case TokenVisa:
		a = Authorization{CardBrand: "visa"}
	case TokenMastercard:
		a = Authorization{CardBrand: "mastercard"}
	case TokenSlow:
		d := s.SlowDelay
		if d <= 0 {
			d = DefaultSlowDelay
		}
		if err := resilience.Sleep(ctx, d); err != nil {
			return Authorization{}, err
		}
		a = Authorization{CardBrand: "visa"}
	case TokenChargeDeclined:
		return Authorization{}, &DeclineError{Code: "card_declined", Reason: "the card was declined"}
	case TokenInsufficientFunds:
		return Authorization{}, &DeclineError{Code: "insufficient_funds", Reason: "the card has insufficient funds"}
	case TokenProcessingError:
		return Authorization{}, fmt.Errorf("%w: the network did not answer", ErrProcessing)
	default:
		return Authorization{}, &DeclineError{Code: "invalid_token", Reason: "unknown card token"}
	}
	a.Reference = referencePrefix + req.IdempotencyKey
	s.mu.Lock()
	if s.auths == nil {
		s.auths = make(map[string]Authorization)
	}
	s.auths[req.IdempotencyKey] = a
	s.mu.Unlock()
	return a, nil
}

// Capture implements Provider; it fails only by FailRate or the context.
func (s *Simulated) Capture(ctx context.Context, _, _ string, _ int64) error { return s.call(ctx) }

// Void implements Provider; it fails only by FailRate or the context.
func (s *Simulated) Void(ctx context.Context, _, _ string) error { return s.call(ctx) }

// Refund implements Provider; it fails only by FailRate or the context.
func (s *Simulated) Refund(ctx context.Context, _, _ string, _ int64) error { return s.call(ctx) }

func (s *Simulated) call(ctx context.Context) error {
	if err := resilience.Sleep(ctx, s.Latency); err != nil {
		return err
	}
	if s.FailRate > 0 && rand.Float64() < s.FailRate {
		return fmt.Errorf("%w: injected failure", ErrProcessing)
	}
	return nil
}
