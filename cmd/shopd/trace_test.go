package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/telemetry/telemetrytest"
)

// The services whose spans one placed order must reach.
var orderServices = []string{"gateway", "order", "catalog", "payment", "inventory", "shipping"}

// placeViaAPI places one unit of the shop's product through the gateway's HTTP API,
// as a browser would, and returns the order id.
func placeViaAPI(t *testing.T, s *sagaShop) string {
	t.Helper()
	token, err := s.Issuer().Login(s.ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"idempotencyKey":  "k-" + uuid.NewString(),
		"items":           []map[string]any{{"productId": s.product.GetId(), "quantity": 1}},
		"shippingAddress": map[string]any{"name": "Alice", "street": "1 Main St", "city": "Springfield", "postalCode": "12345", "countryCode": "US"},
		"paymentToken":    "tok_visa",
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, strings.TrimRight(s.StorefrontURL(), "/")+"/api/v1/orders", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("place order: %s %s", resp.Status, raw)
	}
	var out struct {
		Order struct {
			ID string `json:"id"`
		} `json:"order"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Order.ID == "" {
		t.Fatalf("place order: %v %s", err, raw)
	}
	return out.Order.ID
}

// orderTrace places an order with every span recorded in memory, waits until the
// projection has applied the saga's completion, and returns the spans of the order's trace.
func orderTrace(t *testing.T, opts ...shopOption) (telemetrytest.Spans, trace.TraceID) {
	t.Helper()
	rec := telemetrytest.NewRecorder()
	s := startSagaShop(t, append(opts, func(m *Main, _ *[]string) {
		m.TelemetryOptions = append(m.TelemetryOptions, rec.Option())
	})...)
	id := placeViaAPI(t, s)
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)

	spans := rec.WaitFor(t, func(sp telemetrytest.Spans) bool {
		return len(sp.Named("project eventshop.saga.v1.SagaCompleted")) > 0
	})
	root := spans.OfService("gateway").WithPrefix("POST")
	if len(root) == 0 {
		t.Fatalf("no gateway server span:\n%s", spans.Tree())
	}
	tid := root[0].SpanContext.TraceID()
	return spans.InTrace(tid), tid
}

// TestOrderIsOneTrace: one order placed through the gateway is one trace, from the
// HTTP request through every saga step across NATS to the projection of its end.
func TestOrderIsOneTrace(t *testing.T) {
	trace, _ := orderTrace(t)
	t.Logf("\n%s", trace.Tree())
	telemetrytest.RequireServices(t, trace, orderServices...)
	telemetrytest.RequireSpan(t, trace, "project eventshop.saga.v1.SagaCompleted")

	// Every NATS hop continues the trace: each command is processed in a span the
	// order service's send caused, and each reply the same way back.
	for _, hop := range []struct{ send, process string }{
		{"send cmd.payment.authorize", "process cmd.payment.authorize"},
		{"send cmd.inventory.reserve", "process cmd.inventory.reserve"},
		{"send cmd.shipping.create", "process cmd.shipping.create"},
		{"send evt.payment.authorized", "process evt.payment.authorized"},
	} {
		send, process := requireOne(t, trace, hop.send), requireOne(t, trace, hop.process)
		telemetrytest.RequireCausedBy(t, process, send)
	}
	for _, want := range []struct{ name, service string }{
		{"process cmd.payment.authorize", "payment"},
		{"process cmd.inventory.reserve", "inventory"},
		{"process cmd.shipping.create", "shipping"},
		{"project eventshop.saga.v1.SagaCompleted", "order"},
	} {
		if got := telemetrytest.ServiceOf(requireOne(t, trace, want.name)); got != want.service {
			t.Errorf("span %q reported by %q, want %q", want.name, got, want.service)
		}
	}
}

// requireOne returns the first span of spans called name, failing with the tree.
func requireOne(t *testing.T, spans telemetrytest.Spans, name string) tracetest.SpanStub {
	t.Helper()
	named := spans.Named(name)
	if len(named) == 0 {
		t.Fatalf("no span %q in the trace:\n%s", name, spans.Tree())
	}
	return named[0]
}

// TestOrderTraceInJaeger exports the order's spans over OTLP to a running Jaeger and
// finds the whole trace there.
func TestOrderTraceInJaeger(t *testing.T) {
	jaeger := telemetrytest.JaegerURL(t)
	endpoint := os.Getenv("SHOP_OTLP_ENDPOINT")
	if endpoint == "" {
		endpoint = "127.0.0.1:4317"
	}
	_, tid := orderTrace(t, withFlags("-otlp-endpoint", endpoint))
	telemetrytest.WaitForJaegerTrace(t, jaeger, tid, orderServices...)
}

// TestOrderMovesSagaMetrics: the shop's /metrics (served by the gateway for the whole
// process) counts a placed order's saga as started and completed.
func TestOrderMovesSagaMetrics(t *testing.T) {
	s := startSagaShop(t)
	metrics := remoteHandler(strings.TrimRight(s.StorefrontURL(), "/") + "/metrics")
	before := telemetrytest.Scrape(t, metrics)

	id := placeViaAPI(t, s)
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)

	after := telemetrytest.WaitForMetrics(t, metrics, func(m telemetrytest.Metrics) bool {
		return m.Value("saga_completed_total") > before.Value("saga_completed_total")
	})
	for _, name := range []string{"saga_started_total", "saga_completed_total"} {
		if got, was := after.Value(name), before.Value(name); got < was+1 {
			t.Errorf("%s went from %v to %v, want at least one more", name, was, got)
		}
	}
}

// remoteHandler serves what a GET of url answers, so telemetrytest can scrape a
// /metrics endpoint over HTTP.
func remoteHandler(url string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(url)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}
