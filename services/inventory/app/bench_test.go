package app_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/eventshop/eventshop/pkg/sqldb/sqltest"
	"github.com/eventshop/eventshop/services/inventory/app"
	"github.com/eventshop/eventshop/services/inventory/domain"
)

// BenchmarkReserve measures whole reserve transactions (inbox record, two conditional
// stock updates, reservation, stored reply), run in parallel on one hot product pair.
func BenchmarkReserve(b *testing.B) {
	for _, d := range sqltest.Dialects(b) {
		b.Run(string(d), func(b *testing.B) {
			h, store := open(b, sqltest.Open(b, d))
			ctx := context.Background()
			if _, err := store.Seed(ctx, []string{"hot-a", "hot-b"}, 1<<40); err != nil {
				b.Fatal(err)
			}
			lines := []domain.Line{{ProductID: "hot-a", Quantity: 1}, {ProductID: "hot-b", Quantity: 2}}
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					r, err := h.Reserve(ctx, fmt.Sprint("cmd-", i), fmt.Sprint("order-", i), lines)
					if err != nil || r.Subject != app.SubjectReserved {
						b.Errorf("reserve %d: %s %v", i, r.Subject, err)
						return
					}
				}
			})
		})
	}
}
