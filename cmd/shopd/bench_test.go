package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/cmd/internal/jsbench"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// BenchmarkSagaEmbedded places orders through the real shopd (embedded NATS,
// SQLite, gRPC) with 1, 16, 64 and 256 buyers at a time, each on a fresh shop, and
// waits for each order to read COMPLETED, told by WatchOrder (no polling). Per
// sub-benchmark it reports:
//
//	sagas/s       completed orders per second of wall time
//	p50-ms p99-ms PlaceOrder → COMPLETED in the read model
//	js-publish/s  raw acknowledged JetStream publishes per second with 16
//	              publishers, on the same server, measured in the same sub-benchmark
//	cpu-ms/order  process CPU time (user + system, getrusage) over the load divided
//	              by completed orders; the buyers run in the process, so their gRPC
//	              client work is included
//
// Run it with a fixed count (make bench-saga), since every sub-benchmark is a whole
// shop and b.N orders. SHOP_BENCH_NATS_SYNC=always runs the shops with JetStream
// fsyncing every write before acknowledging it (make bench-saga-sync).
func BenchmarkSagaEmbedded(b *testing.B) {
	for _, buyers := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("buyers=%d", buyers), func(b *testing.B) { benchSaga(b, buyers) })
	}
}

func benchSaga(b *testing.B, buyers int) {
	flags := []string{"-inventory-seed-stock", "100000000"}
	if os.Getenv("SHOP_BENCH_NATS_SYNC") == "always" {
		flags = append(flags, "-nats-sync-always")
	}
	// More shopd flags, e.g. SHOP_BENCH_FLAGS=-order-shared-read.
	flags = append(flags, strings.Fields(os.Getenv("SHOP_BENCH_FLAGS"))...)
	s := startSagaShop(b, withFlags(flags...))
	// Each buyer is a shopper of its own; one shared client's default bulkhead
	// would shed the calls of more than 64 of them before they reach the shop.
	cc, err := resilience.Dial(s.Addr("order"), resilience.WithBulkhead(2*buyers, 10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	s.orders = orderv1.NewOrderServiceClient(cc)
	op, err := s.Identities().Option(natsauth.Operator)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := jsbench.PublishRate(context.Background(), s.NATSClientURL(), 16, 20000, op)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var next, completed atomic.Int64
	latencies := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	for range min(buyers, b.N) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				id, err := s.placeRetrying(fmt.Sprintf("bench-order-%06d", i))
				if err != nil {
					b.Error(err)
					return
				}
				o, err := s.awaitOutcome(id)
				if err != nil {
					b.Error(err)
					return
				}
				if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
					b.Errorf("order %s %v: %s", id, o.GetStatus(), o.GetCancelReason())
					return
				}
				latencies[i] = time.Since(t0)
				completed.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if b.Failed() {
		return
	}

	slices.Sort(latencies)
	n := completed.Load()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "sagas/s")
	b.ReportMetric(float64(latencies[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[min(b.N-1, b.N*99/100)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(raw, "js-publish/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/order")
	b.ReportMetric(0, "ns/op") // wall time per order is sagas/s; ns/op only misleads
	s.audit()
}

// placeRetrying places a one-item order under key, as a shopper's client would:
// a call the shop sheds under load (Unavailable, ResourceExhausted) is sent again
// after a short pause, under the same key, so it never places a second order.
func (s *sagaShop) placeRetrying(key string) (string, error) {
	deadline := time.Now().Add(waitFor)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		id, err := s.tryPlaceKeyed("tok_visa", 1, key)
		switch status.Code(errors.Unwrap(err)) {
		case codes.Unavailable, codes.ResourceExhausted:
			if time.Now().Before(deadline) {
				time.Sleep(pause)
				continue
			}
		}
		return id, err
	}
}

// awaitOutcome waits, on a WatchOrder stream, until order id reads COMPLETED or
// CANCELLED in the read model. One user holds every buyer's watches here, so a watch
// refused for the per-user limit is opened again once another has ended.
func (s *sagaShop) awaitOutcome(id string) (*orderv1.Order, error) {
	deadline := time.Now().Add(waitFor)
	for {
		seen, err := s.watchStates(id)
		if status.Code(errors.Unwrap(err)) == codes.ResourceExhausted && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(seen) == 0 {
			return nil, fmt.Errorf("watch of %s ended with no order", id)
		}
		return seen[len(seen)-1], nil
	}
}

// processCPU is the user plus system CPU time the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
