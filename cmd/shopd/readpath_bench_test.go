package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

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

// readResult is what one offered rate achieved. The load process measures all but
// ShopCPUPerReq, which the shop's process measures while the rate is offered.
type readResult struct {
	Offered, Achieved float64
	Answered          int
	P50, P99          time.Duration
	Errors            int
	// ClientCPUPerReq is the load process's CPU time per answered request;
	// ShopCPUPerReq the shop process's (every service, NATS and SQLite included).
	// Unlike latency, they barely move when other programs take the machine's cores.
	ClientCPUPerReq, ShopCPUPerReq time.Duration
	// Done is false on the line the load process writes as it starts offering the
	// rate, true on the one with the result.
	Done bool
}

func (r readResult) sustained() bool {
	return r.Errors == 0 && r.Achieved >= readHeld*r.Offered && r.P99 <= readP99Bound
}

// readLoadEnv makes the test binary the read path's load generator (TestMain): it
// reads a readLoadSpec (JSON) from the variable, offers the rates and writes a
// readResult per line on stdout.
const readLoadEnv = "SHOPD_TEST_READ_LOAD"

// readLoadSpec is what the load process is told.
type readLoadSpec struct {
	Addr          string   // the order service
	Authorization string   // "Bearer <token>"
	IDs           []string // orders read in turn
}

// BenchmarkReadPath sends GetOrder over real gRPC, with a real bearer token from the
// dev issuer, to the whole shop in-process (embedded NATS, SQLite) holding readOrders
// completed orders. The load comes from another process (this test binary again, see
// runReadLoad), as an external load tool's would: in the shop's own process, the load
// generator's allocations (over twice the server's per request) set off the shop's
// garbage collections and its goroutines queued in the shop's scheduler, so the tail
// measured was as much the generator's as the shop's. The two processes share the
// machine's cores.
//
// It is an open model: requests are scheduled on a fixed timetable, whatever the
// answers do, and each latency runs from the scheduled start, so a slow server cannot
// hide its queue by slowing the client down (coordinated omission). It reports
// achieved req/s, p50 and p99 at a fixed readRate, then steps the offered rate up by
// readRateFactor until one is not sustained (achieved < 95% of offered, any error, or
// p99 > readP99Bound), or down from readRate until one is, and reports the highest
// sustained rate as max-req/s. cpu-us/req is the shop process's CPU time per request at
// readRate, client-cpu-us/req the load process's: the figures to compare when the
// machine is shared. Run it once: make bench-read.
func BenchmarkReadPath(b *testing.B) {
	s := startSagaShop(b, withFlags("-inventory-seed-stock", "100000000"))
	ids := make([]string, readOrders)
	for i := range ids {
		ids[i] = s.place("tok_visa", 1)
	}
	for _, id := range ids {
		s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	}
	md, _ := metadata.FromOutgoingContext(s.ctx)
	spec, err := json.Marshal(readLoadSpec{Addr: s.Addr("order"), Authorization: md.Get("authorization")[0], IDs: ids})
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), readLoadEnv+"="+string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	b.ResetTimer()
	var (
		fixed readResult
		best  float64
		cpu0  time.Duration
	)
	dec := json.NewDecoder(out)
	for {
		var r readResult
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			b.Fatalf("load process: %v\n%s", err, stderr.String())
		}
		if !r.Done {
			cpu0 = processCPU()
			continue
		}
		if r.Answered > 0 {
			r.ShopCPUPerReq = (processCPU() - cpu0) / time.Duration(r.Answered)
		}
		b.Logf("offered %6.0f req/s: achieved %6.0f, p50 %v, p99 %v, errors %d, CPU per request: shop %v, load %v",
			r.Offered, r.Achieved, r.P50, r.P99, r.Errors, r.ShopCPUPerReq, r.ClientCPUPerReq)
		if r.Offered == readRate && fixed.Offered == 0 {
			fixed = r
		}
		if r.sustained() {
			best = max(best, r.Achieved)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("load process: %v\n%s", err, stderr.String())
	}
	b.StopTimer()
	if fixed.Offered == 0 {
		b.Fatalf("load process offered no %d req/s step\n%s", readRate, stderr.String())
	}
	if fixed.Errors > 0 {
		b.Errorf("%d errors at %d req/s", fixed.Errors, readRate)
	}

	b.ReportMetric(fixed.Achieved, "req/s")
	b.ReportMetric(float64(fixed.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(fixed.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(best, "max-req/s")
	b.ReportMetric(float64(fixed.ShopCPUPerReq.Nanoseconds())/1000, "cpu-us/req")
	b.ReportMetric(float64(fixed.ClientCPUPerReq.Nanoseconds())/1000, "client-cpu-us/req")
	b.ReportMetric(0, "ns/op") // one run of fixed length; time per op means nothing here
}

// runReadLoad is the load process of BenchmarkReadPath: it sends GetOrder as spec
// says, first at readRate, then up (or down) the rates as the benchmark describes,
// writing each rate's readResult to w as a JSON line, with a line before each rate.
func runReadLoad(spec string, w io.Writer) error {
	var sp readLoadSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil || len(sp.IDs) == 0 {
		return fmt.Errorf("%s: want a readLoadSpec, got %q: %v", readLoadEnv, spec, err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", sp.Authorization)
	// Clients that neither shed nor retry: a bulkhead would turn the load
	// generator's own queue into errors, and retries would hide the server's.
	clients := make([]orderv1.OrderServiceClient, readClients)
	for i := range clients {
		cc, err := resilience.Dial(sp.Addr,
			resilience.WithBulkhead(1<<20, time.Minute),
			resilience.WithRetry(1, time.Millisecond, time.Millisecond, time.Millisecond),
			resilience.WithBreaker(0, 0))
		if err != nil {
			return err
		}
		defer cc.Close()
		clients[i] = orderv1.NewOrderServiceClient(cc)
	}
	get := func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		id := sp.IDs[i%len(sp.IDs)]
		resp, err := clients[i%len(clients)].GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: id}, grpc.WaitForReady(true))
		if err == nil && resp.GetOrder().GetId() != id {
			err = fmt.Errorf("GetOrder %s answered order %s", id, resp.GetOrder().GetId())
		}
		return err
	}
	// Warm up connections and whatever the server builds on first use.
	if r := offer(ctx, 500, time.Second, get); r.Errors > 0 {
		return fmt.Errorf("warm-up: %d errors", r.Errors)
	}

	enc := json.NewEncoder(w)
	try := func(rate float64) (bool, error) {
		if err := enc.Encode(readResult{Offered: rate}); err != nil {
			return false, err
		}
		r := offer(ctx, rate, readStep, get)
		r.Done = true
		return r.sustained(), enc.Encode(r)
	}
	// Up from readRate while each rate holds; if readRate itself does not, down
	// until one does.
	held, err := try(readRate)
	switch {
	case err != nil:
		return err
	case held:
		for rate := readRate * readRateFactor; rate <= readMaxRate; rate *= readRateFactor {
			if held, err := try(rate); err != nil || !held {
				return err
			}
		}
	default:
		for rate := readRate / readRateFactor; rate >= readMinRate; rate /= readRateFactor {
			if held, err := try(rate); err != nil || held {
				return err
			}
		}
	}
	return nil
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
	r := readResult{Offered: rate, Errors: int(failed.Load()), Answered: len(ok)}
	if len(ok) == 0 {
		return r
	}
	slices.Sort(ok)
	r.P50 = ok[len(ok)/2]
	r.P99 = ok[min(len(ok)-1, len(ok)*99/100)]
	r.Achieved = float64(len(ok)) / time.Unix(0, lastDone.Load()).Sub(start).Seconds()
	r.ClientCPUPerReq = cpu / time.Duration(len(ok))
	return r
}
