package messaging_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/messaging"
)

// An administration request left unanswered (a cluster electing its leaders) is
// tried again until it is answered; an answer that refuses it, even a 503 saying
// JetStream is off, ends the declaration at once with that answer.
func TestDeclareRetriesOnlyUnansweredRequests(t *testing.T) {
	ctx := context.Background()
	unanswered := []error{context.DeadlineExceeded, nats.ErrNoResponders, nats.ErrTimeout,
		&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}}
	for _, first := range unanswered {
		calls := 0
		err := messaging.Declare(ctx, "stream X", func(context.Context) error {
			calls++
			if calls < 3 {
				return first
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("after %v twice: %v in %d calls, want success on the third", first, err, calls)
		}
	}

	for _, refusal := range []error{jetstream.ErrJetStreamNotEnabled, jetstream.ErrStreamNameAlreadyInUse,
		&jetstream.APIError{Code: 400, ErrorCode: 10052, Description: "replicas > 1 not supported in non-clustered mode"}} {
		calls := 0
		err := messaging.Declare(ctx, "stream X", func(context.Context) error { calls++; return refusal })
		if calls != 1 || !errors.Is(err, refusal) {
			t.Errorf("refused with %v: %v after %d calls, want that error after one", refusal, err, calls)
		}
	}

	// Each attempt has its own bound, and the caller's context ends the retries.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var deadlines int
	err := messaging.Declare(cctx, "stream X", func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok {
			deadlines++
		}
		return nats.ErrNoResponders
	})
	if !errors.Is(err, nats.ErrNoResponders) || deadlines < 2 {
		t.Errorf("never answered: %v after %d bounded attempts, want the last error after several", err, deadlines)
	}
}
