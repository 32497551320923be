package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/eventshop/cmd/internal/jsbench"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// BenchmarkSagaEmbedded places orders through the real shopd (embedded NATS,
// SQLite, gRPC) with 16 buyers at a time and waits for each to read COMPLETED. It
// reports completed sagas per second, p50/p99 from PlaceOrder to COMPLETED in the
// read model, and the ceiling: the raw JetStream publish rate measured on the same
// server in the same run divided by jsbench.WritesPerOrder.
func BenchmarkSagaEmbedded(b *testing.B) {
	const buyers = 16
	s := startSagaShop(b, withFlags("-inventory-seed-stock", "100000000"))
	raw, err := jsbench.PublishRate(context.Background(), s.NATSClientURL(), buyers, 20000)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	latencies := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	for range buyers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				id, err := s.tryPlace("tok_visa", 1)
				if err != nil {
					b.Error(err)
					return
				}
				for {
					resp, err := s.orders.GetOrder(s.ctx, &orderv1.GetOrderRequest{OrderId: id})
					if err == nil && resp.GetOrder().GetStatus() == orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
						break
					}
					if err == nil && resp.GetOrder().GetStatus() == orderv1.OrderStatus_ORDER_STATUS_CANCELLED {
						b.Errorf("order %s cancelled: %s", id, resp.GetOrder().GetCancelReason())
						return
					}
					if time.Since(t0) > waitFor {
						b.Errorf("order %s not completed", id)
						return
					}
					time.Sleep(10 * time.Millisecond) // polling harder would steal the CPU it measures
				}
				latencies[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(latencies)
	rate := float64(b.N) / elapsed.Seconds()
	ceiling := raw / jsbench.WritesPerOrder
	b.ReportMetric(rate, "sagas/s")
	b.ReportMetric(float64(latencies[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[min(b.N-1, b.N*99/100)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(raw, "js-publish/s")
	b.ReportMetric(ceiling, "ceiling-sagas/s")
	b.ReportMetric(rate/ceiling, "of-ceiling")
	s.audit()
}
