package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// jetStreamWritesPerOrder counts the JetStream messages one completed order costs
// (an event-store append is one message, whatever its number of events):
//
//	order streams  7: idempotency key claim, OrderPlaced, payment authorized,
//	                  inventory reserved, shipment created, payment captured, completed
//	saga log       6: start (SagaStarted + StepStarted), then one append per reply
//	                  (StepSucceeded + the next StepStarted, or + SagaCompleted)
//	commands       5: authorize, reserve, create shipment, capture, commit
//	replies        5: one event per command
//
// Consumer acknowledgements and the SQL writes of the read model and of the
// participants come on top and are not counted.
const jetStreamWritesPerOrder = 7 + 6 + 5 + 5

// BenchmarkSagaEmbedded places orders through the real shopd (embedded NATS,
// SQLite, gRPC) with 16 buyers at a time and waits for each to read COMPLETED. It
// reports completed sagas per second, p50/p99 from PlaceOrder to COMPLETED in the
// read model, and the ceiling: the raw JetStream publish rate measured on the same
// server in the same run divided by jetStreamWritesPerOrder.
func BenchmarkSagaEmbedded(b *testing.B) {
	const buyers = 16
	s := startSagaShop(b, withFlags("-inventory-seed-stock", "100000000"))
	raw := rawPublishRate(b, s.NATSClientURL(), buyers)

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
	ceiling := raw / jetStreamWritesPerOrder
	b.ReportMetric(rate, "sagas/s")
	b.ReportMetric(float64(latencies[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[min(b.N-1, b.N*99/100)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(raw, "js-publish/s")
	b.ReportMetric(ceiling, "ceiling-sagas/s")
	b.ReportMetric(rate/ceiling, "of-ceiling")
	s.audit()
}

// rawPublishRate returns acknowledged JetStream publishes per second with
// publishers publishing at once to a file-backed stream of the shop's server.
func rawPublishRate(b *testing.B, url string, publishers int) float64 {
	b.Helper()
	const messages = 20000
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	defer js.DeleteStream(ctx, "BENCH")
	payload := make([]byte, 300) // about a saga event or command
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range publishers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > messages {
					return
				}
				if _, err := js.Publish(ctx, fmt.Sprintf("bench.%d", i%64), payload, jetstream.WithMsgID(fmt.Sprint(i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return messages / time.Since(start).Seconds()
}
