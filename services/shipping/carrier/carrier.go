// Package carrier is the parcel carrier the shipping service books with. Simulated is
// the built-in one: a carrier that takes every parcel, unless faults are switched on
// for tests and chaos runs (refusing parcels, answering slowly), the way
// provider.Simulated stands in for the card network in the payment service.
package carrier

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// ErrRefused means the carrier will not take the parcel; it is final. Errors wrapping
// it are *RefusedError.
var ErrRefused = errors.New("parcel refused")

// RefusedError is a final refusal with the carrier's reason.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// Is makes errors.Is(err, ErrRefused) true for every refusal.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Carrier takes parcels. Book is asked about every new shipment before it is stored,
// Cancel about every cancellation; both may be asked again for the same order after a
// crash, so they must be idempotent by order id. Errors wrap ErrRefused (final, Book
// only) or are transient (the command is retried), e.g. the context's.
type Carrier interface {
	Book(ctx context.Context, cmd *shippingv1.CreateShipment) error
	Cancel(ctx context.Context, orderID string) error
}

// Faults make the simulated carrier misbehave on purpose: a test and chaos knob, so
// the saga's compensation path can be exercised. The zero value injects nothing.
type Faults struct {
	// FailRate is the share (0..1) of parcels refused.
	FailRate float64
	// Latency is added to every call.
	Latency time.Duration
	// Hook, when set, is asked about every parcel; a non-nil error refuses it with the
	// error's text as reason.
	Hook func(ctx context.Context, cmd *shippingv1.CreateShipment) error
}

// Simulated is a carrier that takes every parcel, with Faults switched on and off
// while it runs. It is safe for concurrent use; the zero value is ready.
type Simulated struct {
	mu     sync.Mutex
	faults Faults
}

var _ Carrier = (*Simulated)(nil)

// NewSimulated returns a simulated carrier with faults f.
func NewSimulated(f Faults) *Simulated { return &Simulated{faults: f} }

// SetFaults replaces the injected faults; safe while parcels are being booked.
func (s *Simulated) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

func (s *Simulated) current() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Book implements Carrier: it returns a *RefusedError when the hook or the fail rate
// refuses the parcel, and the context's error if it ends during the latency.
func (s *Simulated) Book(ctx context.Context, cmd *shippingv1.CreateShipment) error {
	f := s.current()
	if err := resilience.Sleep(ctx, f.Latency); err != nil {
		return err
	}
	if f.Hook != nil {
		if err := f.Hook(ctx, cmd); err != nil {
			return &RefusedError{Reason: err.Error()}
		}
	}
	if f.FailRate > 0 && rand.Float64() < f.FailRate {
		return &RefusedError{Reason: "carrier refused the parcel (injected failure)"}
	}
	return nil
}

// Cancel implements Carrier: it returns the context's error if it ends during the
// latency.
func (s *Simulated) Cancel(ctx context.Context, _ string) error {
	return resilience.Sleep(ctx, s.current().Latency)
}
