package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/eventshop/eventshop/pkg/telemetry"
)

// httpMetrics records RED metrics of every request with OpenTelemetry and serves
// them in the Prometheus text format.
type httpMetrics struct {
	handler  http.Handler
	provider metric.MeterProvider
	duration metric.Float64Histogram
	limited  metric.Int64Counter
}

// newHTTPMetrics records into the process's telemetry when there is one, else into
// a private registry and meter provider served at /metrics.
func newHTTPMetrics(tel *telemetry.Telemetry) (*httpMetrics, error) {
	m := &httpMetrics{}
	if tel != nil {
		m.handler, m.provider = tel.MetricsHandler(), tel.MeterProvider()
	} else {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, err
		}
		m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		m.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	}
	meter := m.provider.Meter("github.com/eventshop/eventshop/gateway")
	var err error
	if m.duration, err = meter.Float64Histogram("gateway.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP requests by route class (api, page, static, auth, ops).")); err != nil {
		return nil, err
	}
	if m.limited, err = meter.Int64Counter("gateway.rate_limited",
		metric.WithDescription("Requests rejected with 429 by the gateway's rate limits.")); err != nil {
		return nil, err
	}
	return m, nil
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush keeps server-sent events streaming through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// routeClass keeps the metric's cardinality bounded: a handful of classes, not paths.
func routeClass(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/"):
		return "api"
	case strings.HasPrefix(path, "/static/"):
		return "static"
	case strings.HasPrefix(path, "/auth/"):
		return "auth"
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return "ops"
	}
	return "page"
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		attrs := metric.WithAttributes(
			attribute.String("http.route_class", routeClass(r.URL.Path)),
			attribute.String("http.request.method", r.Method),
			attribute.String("http.response.status_code", strconv.Itoa(rec.code)),
		)
		m.duration.Record(r.Context(), time.Since(start).Seconds(), attrs)
		if rec.code == http.StatusTooManyRequests {
			m.limited.Add(r.Context(), 1, metric.WithAttributes(attribute.String("http.route_class", routeClass(r.URL.Path))))
		}
	})
}
