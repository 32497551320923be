package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// Read-path load: the fixed rate that must hold, how the ceiling is searched for, and
// the bounds that keep one run short.
const (
	readRate       = 2000                   // req/s offered in the fixed-rate run
	readStep       = 3 * time.Second        // how long each offered rate runs
	readMaxRate    = 40000                  // the search stops here even if all held
	readMinRate    = 100                    // and here on the way down
	readRateFactor = 1.25                   // each search step offers 25% more
	readP99Bound   = 100 * time.Millisecond // a rate whose p99 exceeds this is not sustained
	readHeld       = 0.95                   // nor one whose achieved rate is below 95% of offered
	readTimeout    = 5 * time.Second        // per request; a late answer counts as an error
	readClients    = 8                      // gRPC connections, each its own HTTP/2 stream pool
	readWorkers    = 256                    // goroutines sending; scheduled requests queue for them
	readOrders     = 50                     // orders placed up front and read in turn
	readDrain      = 10 * time.Second       // how long a step may take to finish after its last send
)

// readResult is what one offered rate achieved.
type readResult struct {
	offered, achieved float64
	p50, p99          time.Duration
	errors            int
	// cpuPerReq is the whole process's CPU time (shop and load generator) per
	// answered request: unlike latency, it barely moves when other programs take
	// the machine's cores.
	cpuPerReq time.Duration
}

func (r readResult) sustained() bool {
	return r.errors == 0 && r.achieved >= readHeld*r.offered && r.p99 <= readP99Bound
}

// BenchmarkReadPath sends GetOrder over real gRPC, with a real bearer token from the
// dev issuer, to the whole shop in-process (embedded NATS, SQLite) holding readOrders
// completed orders. It is an open model: requests are scheduled on a fixed timetable,
// whatever the answers do, and each latency runs from the scheduled start, so a slow
// server cannot hide its queue by slowing the client down (coordinated omission). It
// reports achieved req/s, p50 and p99 at a fixed readRate, then steps the offered rate
// up by readRateFactor until one is not sustained (achieved < 95% of offered, any
// error, or p99 > readP99Bound), or down from readRate until one is, and reports the
// highest sustained rate as max-req/s. cpu-us/req is the process's CPU time per
// request at readRate, the figure to compare when the machine is shared. The
// load generator shares the machine's cores with the shop. Run it once:
// make bench-read.
func BenchmarkReadPath(b *testing.B) {
	s := startSagaShop(b, withFlags("-inventory-seed-stock", "100000000"))
	ids := make([]string, readOrders)
	for i := range ids {
		ids[i] = s.place("tok_visa", 1)
	}
	for _, id := range ids {
		s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	}
	// Clients that neither shed nor retry: a bulkhead would turn the load
	// generator's own queue into errors, and retries would hide the server's.
	clients := make([]orderv1.OrderServiceClient, readClients)
	for i := range clients {
		cc, err := resilience.Dial(s.Addr("order"),
			resilience.WithBulkhead(1<<20, time.Minute),
			resilience.WithRetry(1, time.Millisecond, time.Millisecond, time.Millisecond),
			resilience.WithBreaker(0, 0))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cc.Close() })
		clients[i] = orderv1.NewOrderServiceClient(cc)
	}
	get := func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		resp, err := clients[i%len(clients)].GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: ids[i%len(ids)]}, grpc.WaitForReady(true))
		if err == nil && resp.GetOrder().GetId() != ids[i%len(ids)] {
			err = fmt.Errorf("GetOrder %s answered order %s", ids[i%len(ids)], resp.GetOrder().GetId())
		}
		return err
	}
	// Warm up connections and whatever the server builds on first use.
	if r := offer(s.ctx, 500, time.Second, get); r.errors > 0 {
		b.Fatalf("warm-up: %d errors", r.errors)
	}

	b.ResetTimer()
	fixed := offer(s.ctx, readRate, readStep, get)
	if fixed.errors > 0 {
		b.Errorf("%d errors at %d req/s", fixed.errors, readRate)
	}
	// Up from readRate while each rate holds; if readRate itself does not, down
	// until one does.
	best := 0.0
	try := func(rate float64) bool {
		r := fixed
		if rate != readRate {
			r = offer(s.ctx, rate, readStep, get)
		}
		b.Logf("offered %6.0f req/s: achieved %6.0f, p50 %v, p99 %v, errors %d, CPU %v/req", r.offered, r.achieved, r.p50, r.p99, r.errors, r.cpuPerReq)
		if r.sustained() {
			best = max(best, r.achieved)
		}
		return r.sustained()
	}
	if try(readRate) {
		for rate := readRate * readRateFactor; rate <= readMaxRate; rate *= readRateFactor {
			if !try(rate) {
				break
			}
		}
	} else {
		for rate := readRate / readRateFactor; rate >= readMinRate; rate /= readRateFactor {
			if try(rate) {
				break
			}
		}
	}
	b.StopTimer()

	b.ReportMetric(fixed.achieved, "req/s")
	b.ReportMetric(float64(fixed.p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(fixed.p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(best, "max-req/s")
	b.ReportMetric(float64(fixed.cpuPerReq.Nanoseconds())/1000, "cpu-us/req")
	b.ReportMetric(0, "ns/op") // one run of fixed length; time per op means nothing here
}

// offer schedules rate*d calls of do on a fixed timetable (call i at start + i/rate),
// runs them on readWorkers goroutines and measures each from its scheduled time. A
// call not finished readDrain after the last scheduled one is abandoned and counted
// as an error.
func offer(ctx context.Context, rate float64, d time.Duration, do func(context.Context, int) error) readResult {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	ctx, cancel := context.WithTimeout(ctx, d+readDrain)
	defer cancel()

	type job struct {
		i     int
		start time.Time
	}
	jobs := make(chan job, n)
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	var lastDone atomic.Int64
	var wg sync.WaitGroup
	for range readWorkers {
		wg.Go(func() {
			for j := range jobs {
				if err := do(ctx, j.i); err != nil {
					failed.Add(1)
					lat[j.i] = -1
					continue
				}
				now := time.Now()
				lat[j.i] = now.Sub(j.start)
				for {
					last := lastDone.Load()
					if now.UnixNano() <= last || lastDone.CompareAndSwap(last, now.UnixNano()) {
						break
					}
				}
			}
		})
	}
	cpu0 := processCPU()
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- job{i: i, start: at}
	}
	close(jobs)
	wg.Wait()
	cpu := processCPU() - cpu0

	ok := slices.DeleteFunc(lat, func(l time.Duration) bool { return l < 0 })
	r := readResult{offered: rate, errors: int(failed.Load())}
	if len(ok) == 0 {
		return r
	}
	slices.Sort(ok)
	r.p50 = ok[len(ok)/2]
	r.p99 = ok[min(len(ok)-1, len(ok)*99/100)]
	r.achieved = float64(len(ok)) / time.Unix(0, lastDone.Load()).Sub(start).Seconds()
	r.cpuPerReq = cpu / time.Duration(len(ok))
	return r
}
