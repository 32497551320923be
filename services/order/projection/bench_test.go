package projection

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
)

// BenchmarkProjection projects a pre-filled in-memory store (2,000 generated orders)
// from zero into a fresh database per iteration and reports events/s. batch=500 is
// catch-up and rebuild; batch=1 is one transaction per event, the cost of the live path.
func BenchmarkProjection(b *testing.B) {
	ctx := context.Background()
	store := eventstore.NewMemory()
	generate(ctx, b, store, 77, 2_000)
	events := len(mustReadAll(ctx, b, store))
	for _, batch := range []int{DefaultBatchSize, 1} {
		for _, d := range sqltest.Dialects(b) {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, d), func(b *testing.B) {
				var total float64
				for b.Loop() {
					b.StopTimer()
					db := sqltest.Open(b, d)
					if err := Migrate(ctx, db); err != nil {
						b.Fatal(err)
					}
					p := newProjector(db, store, liveTables, WithBatchSize(batch))
					if _, err := p.loadCheckpoint(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					n, err := p.catchUp(ctx, nil)
					if err != nil || n != events {
						b.Fatalf("projected %d of %d events: %v", n, events, err)
					}
					total += float64(n)
				}
				b.ReportMetric(total/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
