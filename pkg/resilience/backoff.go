package resilience

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// NewBackoff is the growing pause of the shop's restart and retry loops (a
// subscription restarted after a failure, a declaration tried again, a refused
// order sent again): it starts at initial, doubles up to max, and is jittered by
// half either way so that many clients failing together do not retry together.
// Call NextBackOff for each pause (then Sleep it) and Reset after progress. It is
// not safe for concurrent use. The per-call retries of a Policy use their own full
// jitter instead, documented there.
func NewBackoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.Reset()
	return b
}
