package resilience

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes to JetStream through a Policy: default deadline, bulkhead,
// breaker and bounded retry. A Publisher is safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	policy *Policy
}

// NewPublisher returns a publisher on js for the broker called name ("nats"), with opts
// as for Dial (WithIdempotentMethods and WithDialOptions are ignored). It panics on a
// nil js: that is a wiring error.
func NewPublisher(js jetstream.JetStream, name string, opts ...Option) *Publisher {
	if js == nil {
		panic("resilience: NewPublisher with nil JetStream")
	}
	return &Publisher{js: js, policy: NewPolicy(name, opts...)}
}

// Policy returns the publisher's policy, to inspect its breaker.
func (p *Publisher) Policy() *Policy { return p.policy }

// noInnerRetry turns off jetstream's own no-responders retry: the Publisher retries
// with its own bounds and backoff instead.
var noInnerRetry = jetstream.WithRetryAttempts(0)

// Publish publishes msg with js.PublishMsg and returns its ack. It returns an error
// wrapping ErrBulkheadFull or ErrCircuitOpen when the call is refused; otherwise the
// last error of jetstream, e.g. an *jetstream.APIError for a wrong expected last
// sequence (an answer: neither retried nor counted against the broker), or
// jetstream.ErrNoStreamResponse / context.DeadlineExceeded when the broker is
// unhealthy (counted by the breaker). No-responders is retried (nothing was stored);
// a timeout is retried only if msg carries a Nats-Msg-Id, so the broker deduplicates.
func (p *Publisher) Publish(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	pol := p.policy
	ctx, cancel := pol.withDefaultDeadline(ctx)
	if cancel != nil {
		defer cancel()
	}
	if err := pol.acquire(ctx); err != nil {
		return nil, err
	}
	defer pol.release(ctx)
	done, err := pol.allow(ctx)
	if err != nil {
		return nil, err
	}

	all := make([]jetstream.PublishOpt, 0, len(opts)+1)
	all = append(all, noInnerRetry)
	all = append(all, opts...)

	start := time.Now()
	ack, err := p.js.PublishMsg(ctx, msg, all...)
	if err != nil && pol.cfg.maxAttempts > 1 {
		for n := 1; retryablePublish(ctx, msg, err) && pol.waitRetry(ctx, n, start); n++ {
			if ack, err = p.js.PublishMsg(ctx, msg, all...); err == nil {
				break
			}
		}
	}
	done(classifyPublish(ctx, err))
	return ack, err
}

func retryablePublish(ctx context.Context, msg *nats.Msg, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return true
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return msg.Header.Get(jetstream.MsgIDHeader) != ""
	}
	return false
}

// classifyPublish maps a publish result to a breaker outcome. Broker answers
// (JetStream API errors) are successes; timeouts, missing responders and a dead
// connection are failures; anything else (bad options, caller cancelling) is ignored.
func classifyPublish(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if callerCanceled(ctx, err) {
		return errExcluded
	}
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected):
		return errFailure
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return nil
	}
	return errExcluded
}
