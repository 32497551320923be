// Package telemetrytest records the spans and metrics of a test in memory and asserts
// on their shape: one trace, the services it crossed, parent/child and link relations,
// and counters scraped from the Prometheus handler.
package telemetrytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/eventshop/pkg/telemetry"
)

// DefaultWait bounds WaitFor.
const DefaultWait = 10 * time.Second

// Recorder is the telemetry of a test: a full telemetry.Setup pipeline whose spans
// land in memory as each one ends.
type Recorder struct {
	tel *telemetry.Telemetry
	exp *exporter
}

// Start sets up telemetry for serviceName (sampling every trace) with an in-memory
// exporter and logs discarded (WithLogOutput overrides), and installs it as the
// process's global pipeline; cleanup shuts its spans down. Tests that use it share the
// otel globals, so they must not call t.Parallel. Metrics are process-wide and
// accumulate across tests: compare a scrape with one taken before the work. It fails
// the test if Setup fails.
func Start(t testing.TB, serviceName string, opts ...telemetry.Option) *Recorder {
	t.Helper()
	r := NewRecorder()
	opts = append([]telemetry.Option{r.Option(), telemetry.WithLogOutput(io.Discard)}, opts...)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: serviceName, SampleRatio: 1}, opts...)
	if err != nil {
		t.Fatalf("telemetry setup: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	})
	r.tel = tel
	return r
}

// NewRecorder returns a recorder for a program that calls telemetry.Setup itself
// (shopd's Main): pass Option() among its Setup options, and the recorder sees every
// span of that pipeline as it ends. Its Telemetry is nil.
func NewRecorder() *Recorder { return &Recorder{exp: newExporter()} }

// Option feeds the recorder from a telemetry.Setup pipeline.
func (r *Recorder) Option() telemetry.Option { return telemetry.WithSyncSpanExporter(r.exp) }

// Telemetry returns the pipeline, for ForService, NewContext, Logger and
// MetricsHandler.
func (r *Recorder) Telemetry() *telemetry.Telemetry { return r.tel }

// Spans returns every span ended so far, in the order they ended.
func (r *Recorder) Spans() Spans { return r.exp.snapshot() }

// Reset forgets the spans recorded so far.
func (r *Recorder) Reset() { r.exp.reset() }

// WaitFor returns the spans recorded once cond holds for them, re-checking as each
// span ends. It fails the test with the span tree if cond does not hold within
// DefaultWait.
func (r *Recorder) WaitFor(t testing.TB, cond func(Spans) bool) Spans {
	t.Helper()
	deadline := time.NewTimer(DefaultWait)
	defer deadline.Stop()
	for {
		spans, changed := r.exp.watch()
		if cond(spans) {
			return spans
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("spans did not reach the expected state within %s; recorded:\n%s", DefaultWait, spans.Tree())
			return nil
		}
	}
}

// WaitForSpan waits (see WaitFor) until a span called name has ended and returns it.
func (r *Recorder) WaitForSpan(t testing.TB, name string) tracetest.SpanStub {
	t.Helper()
	spans := r.WaitFor(t, func(s Spans) bool { return len(s.Named(name)) > 0 })
	return spans.Named(name)[0]
}

// Spans is a list of ended spans with queries for assertions.
type Spans []tracetest.SpanStub

// Named returns the spans called name.
func (s Spans) Named(name string) Spans {
	return s.filter(func(sp tracetest.SpanStub) bool { return sp.Name == name })
}

// WithPrefix returns the spans whose name starts with prefix ("process cmd.payment").
func (s Spans) WithPrefix(prefix string) Spans {
	return s.filter(func(sp tracetest.SpanStub) bool { return strings.HasPrefix(sp.Name, prefix) })
}

// OfService returns the spans whose resource has service.name svc.
func (s Spans) OfService(svc string) Spans {
	return s.filter(func(sp tracetest.SpanStub) bool { return ServiceOf(sp) == svc })
}

// InTrace returns the spans of trace id.
func (s Spans) InTrace(id trace.TraceID) Spans {
	return s.filter(func(sp tracetest.SpanStub) bool { return sp.SpanContext.TraceID() == id })
}

// Services returns the sorted service names the spans come from.
func (s Spans) Services() []string {
	var out []string
	for _, sp := range s {
		if n := ServiceOf(sp); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TraceIDs returns the distinct trace ids, in order of first appearance.
func (s Spans) TraceIDs() []trace.TraceID {
	var out []trace.TraceID
	for _, sp := range s {
		if id := sp.SpanContext.TraceID(); !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Parent returns the span that is sp's parent, if it was recorded.
func (s Spans) Parent(sp tracetest.SpanStub) (tracetest.SpanStub, bool) {
	for _, p := range s {
		if p.SpanContext.SpanID() == sp.Parent.SpanID() && p.SpanContext.TraceID() == sp.Parent.TraceID() {
			return p, true
		}
	}
	return tracetest.SpanStub{}, false
}

func (s Spans) filter(keep func(tracetest.SpanStub) bool) Spans {
	var out Spans
	for _, sp := range s {
		if keep(sp) {
			out = append(out, sp)
		}
	}
	return out
}

// Tree renders the spans as indented trees per trace, for failure messages:
// "[service] name (kind)".
func (s Spans) Tree() string {
	var b strings.Builder
	children := make(map[trace.SpanID][]tracetest.SpanStub)
	known := make(map[trace.SpanID]bool)
	for _, sp := range s {
		known[sp.SpanContext.SpanID()] = true
	}
	var roots []tracetest.SpanStub
	for _, sp := range s {
		if sp.Parent.IsValid() && known[sp.Parent.SpanID()] {
			children[sp.Parent.SpanID()] = append(children[sp.Parent.SpanID()], sp)
			continue
		}
		roots = append(roots, sp)
	}
	var walk func(sp tracetest.SpanStub, depth int)
	walk = func(sp tracetest.SpanStub, depth int) {
		fmt.Fprintf(&b, "%s[%s] %s (%s)", strings.Repeat("  ", depth), ServiceOf(sp), sp.Name, sp.SpanKind)
		if len(sp.Links) > 0 {
			fmt.Fprintf(&b, " links=%d", len(sp.Links))
		}
		b.WriteByte('\n')
		kids := children[sp.SpanContext.SpanID()]
		sort.Slice(kids, func(i, j int) bool { return kids[i].StartTime.Before(kids[j].StartTime) })
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].StartTime.Before(roots[j].StartTime) })
	for _, r := range roots {
		fmt.Fprintf(&b, "trace %s\n", r.SpanContext.TraceID())
		walk(r, 1)
	}
	return b.String()
}

// ServiceOf returns the service.name of the resource sp was recorded with.
func ServiceOf(sp tracetest.SpanStub) string {
	if sp.Resource == nil {
		return ""
	}
	v, _ := sp.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

// RequireOneTrace fails the test unless every span shares one trace id, and returns it.
func RequireOneTrace(t testing.TB, spans Spans) trace.TraceID {
	t.Helper()
	ids := spans.TraceIDs()
	if len(ids) != 1 {
		t.Fatalf("want one trace, got %d:\n%s", len(ids), spans.Tree())
	}
	return ids[0]
}

// RequireServices fails the test unless the spans come from at least every service in
// want.
func RequireServices(t testing.TB, spans Spans, want ...string) {
	t.Helper()
	got := spans.Services()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("no span from service %q (services: %v):\n%s", w, got, spans.Tree())
		}
	}
}

// RequireSpan fails the test unless a span called name exists, and returns the first.
func RequireSpan(t testing.TB, spans Spans, name string) tracetest.SpanStub {
	t.Helper()
	named := spans.Named(name)
	if len(named) == 0 {
		t.Fatalf("no span %q:\n%s", name, spans.Tree())
	}
	return named[0]
}

// RequireChildOf fails the test unless child's parent is parent.
func RequireChildOf(t testing.TB, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() || child.Parent.TraceID() != parent.SpanContext.TraceID() {
		t.Fatalf("span %q (parent %s) is not a child of %q (%s)", child.Name, child.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
	}
}

// RequireDescendantOf fails the test unless ancestor is on child's parent chain in
// spans.
func RequireDescendantOf(t testing.TB, spans Spans, child, ancestor tracetest.SpanStub) {
	t.Helper()
	cur := child
	for range len(spans) + 1 {
		p, ok := spans.Parent(cur)
		if !ok {
			break
		}
		if p.SpanContext.SpanID() == ancestor.SpanContext.SpanID() {
			return
		}
		cur = p
	}
	t.Fatalf("span %q does not descend from %q:\n%s", child.Name, ancestor.Name, spans.Tree())
}

// RequireCausedBy fails the test unless from started to (to is its parent or it
// links to it), as a consumer span relates to the producer span of its message.
func RequireCausedBy(t testing.TB, to, from tracetest.SpanStub) {
	t.Helper()
	if to.Parent.SpanID() == from.SpanContext.SpanID() {
		return
	}
	for _, l := range to.Links {
		if l.SpanContext.SpanID() == from.SpanContext.SpanID() {
			return
		}
	}
	t.Fatalf("span %q neither is a child of nor links to %q", to.Name, from.Name)
}

// Metrics is a Prometheus scrape: metric family name to family.
type Metrics map[string]*dto.MetricFamily

// Scrape GETs h (a /metrics handler) and parses the text exposition. It fails the
// test on a non-200 answer or a malformed body.
func Scrape(t testing.TB, h http.Handler) Metrics {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body.String())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return Metrics(fams)
}

// WaitForMetrics scrapes h until cond holds and returns that scrape. Instruments are
// often recorded just after the work a test can await (a server records its RPC
// duration after the client has its answer), and a scrape signals nothing, so this
// polls every 20ms for at most DefaultWait, then fails the test.
func WaitForMetrics(t testing.TB, h http.Handler, cond func(Metrics) bool) Metrics {
	t.Helper()
	deadline := time.Now().Add(DefaultWait)
	for {
		m := Scrape(t, h)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not reach the expected state within %s", DefaultWait)
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Value sums the samples of the family name whose labels include every pair of
// labels ("target", "catalog", ...): the counter or gauge value, or a histogram's
// count. A missing family or series sums to 0.
func (m Metrics) Value(name string, labels ...string) float64 {
	fam, ok := m[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			sum += s.Counter.GetValue()
		case s.Gauge != nil:
			sum += s.Gauge.GetValue()
		case s.Histogram != nil:
			sum += float64(s.Histogram.GetSampleCount())
		case s.Untyped != nil:
			sum += s.Untyped.GetValue()
		}
	}
	return sum
}

// Has reports whether the family name was exposed.
func (m Metrics) Has(name string) bool {
	_, ok := m[name]
	return ok
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// exporter keeps ended spans and wakes waiters on every export.
type exporter struct {
	mu      sync.Mutex
	spans   Spans
	changed chan struct{}
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

func newExporter() *exporter { return &exporter{changed: make(chan struct{})} }

func (e *exporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans = append(e.spans, tracetest.SpanStubsFromReadOnlySpans(spans)...)
	close(e.changed)
	e.changed = make(chan struct{})
	return nil
}

func (e *exporter) Shutdown(context.Context) error { return nil }

func (e *exporter) snapshot() Spans {
	s, _ := e.watch()
	return s
}

func (e *exporter) watch() (Spans, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.spans), e.changed
}

func (e *exporter) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans = nil
}
