package resilience

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff is the growing pause of the shop's restart and retry loops (a
// subscription restarted after a failure, a declaration tried again, a refused
// order sent again, writers that lost an optimistic-concurrency race): it starts at
// Initial, doubles up to Max, and is jittered by half either way so that many
// clients failing together do not retry together. It is a value to declare where
// the loop starts; its state is built on the first pause, so a loop that never
// pauses (most updates) allocates nothing. It is not safe for concurrent use. The
// per-call retries of a Policy use their own full jitter instead, documented there.
type Backoff struct {
	Initial, Max time.Duration

	b *backoff.ExponentialBackOff
}

// ContentionBackoff is the Backoff of writers that lost an optimistic-concurrency
// race: short, so the retry comes while the caller still waits.
func ContentionBackoff() Backoff {
	return Backoff{Initial: 2 * time.Millisecond, Max: 100 * time.Millisecond}
}

// Next returns the next pause.
func (p *Backoff) Next() time.Duration {
	if p.b == nil {
		p.b = backoff.NewExponentialBackOff()
		p.b.InitialInterval = p.Initial
		p.b.MaxInterval = p.Max
		p.b.Multiplier = 2
		p.b.RandomizationFactor = 0.5
		p.b.Reset()
	}
	return p.b.NextBackOff()
}

// Wait sleeps the next pause, or until ctx is done (see Sleep).
func (p *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, p.Next()) }

// Reset makes the next pause Initial again: after progress, a new failure is a
// first one.
func (p *Backoff) Reset() {
	if p.b != nil {
		p.b.Reset()
	}
}
