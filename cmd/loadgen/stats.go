package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// stats collects latencies per operation and errors by operation and code. One
// mutex is enough: a load run records thousands of samples a second, not millions.
type stats struct {
	mu        sync.Mutex
	start     time.Time
	latencies map[string][]time.Duration
	errors    map[string]int
	outcomes  map[string]int
	placed    int
	unplaced  int // shoppers who never got PlaceOrder answered
}

func newStats() *stats {
	return &stats{start: time.Now(), latencies: map[string][]time.Duration{}, errors: map[string]int{}, outcomes: map[string]int{}}
}

// reset forgets everything recorded so far, so set-up calls stay out of the report.
func (s *stats) reset() {
	fresh := newStats()
	s.mu.Lock()
	s.start, s.latencies, s.errors, s.outcomes, s.placed, s.unplaced = fresh.start, fresh.latencies, fresh.errors, fresh.outcomes, 0, 0
	s.mu.Unlock()
}

func (s *stats) observe(op string, d time.Duration) {
	s.mu.Lock()
	s.latencies[op] = append(s.latencies[op], d)
	s.mu.Unlock()
}

func (s *stats) fail(op, code string) {
	s.mu.Lock()
	s.errors[op+" "+code]++
	s.mu.Unlock()
}

func (s *stats) orderPlaced() {
	s.mu.Lock()
	s.placed++
	s.mu.Unlock()
}

func (s *stats) orderUnplaced() {
	s.mu.Lock()
	s.unplaced++
	s.mu.Unlock()
}

func (s *stats) outcome(status string) {
	s.mu.Lock()
	s.outcomes[status]++
	s.mu.Unlock()
}

// Percentiles of one operation, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return Percentiles{Count: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// progress is the one-line live view: orders placed and final, rate, PlaceOrder p50/p99.
func (s *stats) progress() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := time.Since(s.start).Seconds()
	p := percentiles(s.latencies[opPlaceOrder])
	return fmt.Sprintf("%5.0fs placed=%d completed=%d cancelled=%d rate=%.1f/s place p50=%.1fms p99=%.1fms errors=%d",
		el, s.placed, s.outcomes["COMPLETED"], s.outcomes["CANCELLED"], float64(s.placed)/max(el, 0.001), p.P50, p.P99, sum(s.errors))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Report is the outcome of a run, printed as text or JSON (-json).
type Report struct {
	Scenario     string                 `json:"scenario"`
	OfferedRate  float64                `json:"offered_rate_per_s,omitempty"`
	Users        int                    `json:"users,omitempty"`
	Seconds      float64                `json:"seconds"`
	Placed       int                    `json:"orders_placed"`
	Completed    int                    `json:"completed"`
	Cancelled    int                    `json:"cancelled"`
	NotFinal     int                    `json:"not_final"`
	Unplaced     int                    `json:"unplaced"` // shoppers whose PlaceOrder was never answered (see place)
	Throughput   float64                `json:"throughput_orders_per_s"`
	Ops          map[string]Percentiles `json:"ops"`
	OrderToFinal Percentiles            `json:"place_to_final"`
	Errors       map[string]int         `json:"errors"`
	Restarts     map[string]int         `json:"restarts,omitempty"`
	Faults       []string               `json:"faults,omitempty"`
	Units        int                    `json:"flash_sale_units,omitempty"`
	Ceiling      *Ceiling               `json:"ceiling,omitempty"`
	Audit        *AuditSummary          `json:"audit,omitempty"`
	Failures     []string               `json:"failures"`
}

// Ceiling is what the shop's JetStream server could carry, measured after the load
// (-ceiling): its raw acknowledged publish rate, the orders per second that rate
// allows at WritesPerOrder messages an order, and the run's final orders per second
// as a share of that.
type Ceiling struct {
	PublishesPerS  float64 `json:"jetstream_publishes_per_s"`
	WritesPerOrder int     `json:"writes_per_order"`
	OrdersPerS     float64 `json:"ceiling_orders_per_s"`
	Share          float64 `json:"share_of_ceiling"`
}

// AuditSummary is what the invariant auditor found after the run.
type AuditSummary struct {
	Orders     int            `json:"orders"`
	Products   int            `json:"products"`
	ByStatus   map[string]int `json:"by_status"`
	Violations []string       `json:"violations"`
}

// OK reports whether the run kept every promise: all sagas final, a clean audit
// and, for a flash sale, exactly as many completed orders as units.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

func (s *stats) report(scenario string, loadTime time.Duration) *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Report{
		Scenario:     scenario,
		Seconds:      loadTime.Seconds(),
		Placed:       s.placed,
		Unplaced:     s.unplaced,
		Completed:    s.outcomes["COMPLETED"],
		Cancelled:    s.outcomes["CANCELLED"],
		Ops:          map[string]Percentiles{},
		OrderToFinal: percentiles(s.latencies[opToFinal]),
		Errors:       cloneCounts(s.errors),
		Failures:     []string{},
	}
	r.NotFinal = r.Placed - r.Completed - r.Cancelled
	if loadTime > 0 {
		r.Throughput = float64(r.Completed+r.Cancelled) / loadTime.Seconds()
	}
	for op, ds := range s.latencies {
		if op != opToFinal {
			r.Ops[op] = percentiles(ds)
		}
	}
	return r
}

// cloneCounts copies m; never nil, so the JSON report says {} rather than null.
func cloneCounts(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return maps.Clone(m)
}

// Print writes the human-readable report.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s: %d orders placed in %.1fs, %d completed, %d cancelled, %d not final; %.1f final orders/s\n",
		r.Scenario, r.Placed, r.Seconds, r.Completed, r.Cancelled, r.NotFinal, r.Throughput)
	if r.Unplaced > 0 {
		fmt.Fprintf(w, "%d shoppers never got PlaceOrder answered and gave up\n", r.Unplaced)
	}
	ops := make([]string, 0, len(r.Ops))
	for op := range r.Ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprintf(w, "%-16s %7s %9s %9s %9s %9s\n", "operation", "count", "p50 ms", "p90 ms", "p99 ms", "max ms")
	line := func(name string, p Percentiles) {
		fmt.Fprintf(w, "%-16s %7d %9.1f %9.1f %9.1f %9.1f\n", name, p.Count, p.P50, p.P90, p.P99, p.Max)
	}
	for _, op := range ops {
		line(op, r.Ops[op])
	}
	line("place->final", r.OrderToFinal)
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprint(w, "errors:")
		for _, k := range keys {
			fmt.Fprintf(w, " [%s]=%d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
	if len(r.Restarts) > 0 {
		fmt.Fprintf(w, "restarts: %v\n", r.Restarts)
	}
	for _, f := range r.Faults {
		fmt.Fprintf(w, "fault: %s\n", f)
	}
	if c := r.Ceiling; c != nil {
		fmt.Fprintf(w, "ceiling: %.0f JetStream publishes/s / %d writes per order = %.0f orders/s; this run reached %.1f%% of it\n",
			c.PublishesPerS, c.WritesPerOrder, c.OrdersPerS, 100*c.Share)
	}
	if a := r.Audit; a != nil {
		fmt.Fprintf(w, "audit: %d orders %v, %d products, %d violations\n", a.Orders, a.ByStatus, a.Products, len(a.Violations))
		for _, v := range a.Violations {
			fmt.Fprintln(w, "  ", v)
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "result: OK")
	} else {
		fmt.Fprintf(w, "result: FAILED\n  %s\n", strings.Join(r.Failures, "\n  "))
	}
}
