package messaging_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/messaging"
)

func TestPruneEveryPrunesAtOnceAndOnEachTick(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan time.Time, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		messaging.PruneEvery(ctx, 10*time.Millisecond, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)),
			func(_ context.Context, before time.Time) (int64, error) {
				calls <- before
				return 0, errors.New("a failure is retried next time")
			})
	}()
	for i := range 3 {
		before := <-calls
		if age := time.Since(before); age < time.Hour || age > time.Hour+time.Minute {
			t.Fatalf("call %d: cut-off %v ago, want the retention (1h)", i, age)
		}
	}
	cancel()
	<-done
}
