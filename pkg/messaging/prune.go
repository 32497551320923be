package messaging

import (
	"context"
	"log/slog"
	"time"
)

// PruneEvery calls prune with the cut-off now-retention at once and then every
// interval, until ctx is done. It is how a command handler keeps its inbox and stored
// replies (Replies.Prune) bounded. A failure is logged and tried again next time:
// an unpruned table only grows, it never loses a record it still needs.
func PruneEvery(ctx context.Context, interval, retention time.Duration, logger *slog.Logger, prune func(ctx context.Context, before time.Time) (int64, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := prune(ctx, time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "pruning processed commands failed", "error", err)
		} else if n > 0 {
			logger.InfoContext(ctx, "processed commands pruned", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
