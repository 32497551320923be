package participant_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// BenchmarkBatchedVsSingle drains the same backlog of commands through the runtime
// (consumer, inbox, effect, stored reply, async reply publish, ack) with batches of
// one command and with the default batch size, in the same run, and reports both
// rates and their ratio. Ratios, not absolute rates, are what compare across machines.
func BenchmarkBatchedVsSingle(b *testing.B) {
	const backlog = 1000
	for _, d := range sqltest.Dialects(b) {
		b.Run(string(d), func(b *testing.B) {
			rate := func(batchSize int) float64 {
				s := newShop(b)
				db := sqltest.Open(b, d)
				rt := newRuntime(b, db, newCharger())
				ctx := context.Background()
				// Send the backlog concurrently: the sender is not what is measured.
				var wg sync.WaitGroup
				for w := range 8 {
					wg.Go(func() {
						for i := w; i < backlog; i += 8 {
							if _, err := s.sender.SendCommand(ctx, commandSubject, fmt.Sprint("cmd-", i), charge(fmt.Sprint("order-", i))); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				start := time.Now()
				s.consume(b, s.conn(b), batchSize, rt.HandleBatch, rt.Types())
				for s.msgs(b, messaging.EventStream) < backlog || s.unsettled(b) > 0 {
					time.Sleep(5 * time.Millisecond)
				}
				return backlog / time.Since(start).Seconds()
			}
			var single, batched float64
			for b.Loop() {
				single += rate(1)
				batched += rate(messaging.DefaultBatchSize)
			}
			b.ReportMetric(single/float64(b.N), "single-cmd/s")
			b.ReportMetric(batched/float64(b.N), "batched-cmd/s")
			b.ReportMetric(batched/single, "ratio")
		})
	}
}
