package messaging

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/resilience"
)

// DeclareAttemptTimeout bounds one attempt of Declare.
const DeclareAttemptTimeout = 5 * time.Second

// Declare runs a JetStream administration request (create or update a stream, a
// bucket or a consumer) until it is answered, each attempt bounded by
// DeclareAttemptTimeout, and returns its error when that is an answer (a refused
// config, a permission): a cluster that has just formed, or has just lost a node,
// may leave a request unanswered while its meta leader settles, and a later one is
// answered. It gives up when ctx ends, with the last attempt's error.
func Declare(ctx context.Context, what string, attempt func(context.Context) error) error {
	pauses := resilience.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second}
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, DeclareAttemptTimeout)
		err := attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !unanswered(err) || pauses.Wait(ctx) != nil {
			if n > 1 {
				return fmt.Errorf("%s: %d attempts: %w", what, n, err)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// unanswered reports whether err means the request got no answer in time, rather
// than an answer that refused it.
func unanswered(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: the cluster has no leader for it yet. A server or account without
		// JetStream answers 503 too, and that does not pass.
		return apiErr.Code == 503 && apiErr.ErrorCode != jetstream.JSErrCodeJetStreamNotEnabled &&
			apiErr.ErrorCode != jetstream.JSErrCodeJetStreamNotEnabledForAccount
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}

// DeclareKeyValue creates the key-value bucket cfg describes, or updates its
// settings, as Declare does; what names it in the error.
func DeclareKeyValue(ctx context.Context, js jetstream.JetStream, what string, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := Declare(ctx, what, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	return kv, err
}

// declareConsumer creates the durable consumer cfg describes on stream, or updates
// it, as Declare does.
func (b *Bus) declareConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := Declare(ctx, fmt.Sprintf("messaging: declare consumer %s on %s", cfg.Durable, stream), func(ctx context.Context) (err error) {
		cons, err = b.js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	})
	return cons, err
}
