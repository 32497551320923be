package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// DurationBuckets are the histogram boundaries, in seconds, of every instrument
// measured in "s" (RPC, handler and saga durations): from a millisecond to a minute.
var DurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Telemetry is the OpenTelemetry setup of one service. The value Setup returns owns the
// process-wide pipeline (exporters, meter provider, globals); ForService derives views
// that share it under another service.name.
type Telemetry struct {
	name   string
	tp     *sdktrace.TracerProvider
	logger *slog.Logger
	shared *pipeline
}

// pipeline is what every service of a process shares.
type pipeline struct {
	cfg       Config
	res       *resource.Resource
	sampler   sdktrace.Sampler
	exporters []sdktrace.SpanExporter // wrapped so only Shutdown of the root closes them
	syncers   []sdktrace.SpanExporter
	closers   []sdktrace.SpanExporter // the real exporters, closed last
	mp        *sdkmetric.MeterProvider
	metrics   http.Handler
	logBase   slog.Handler
	root      *Telemetry

	mu       sync.Mutex
	services map[string]*Telemetry
	closed   bool
}

type options struct {
	exporters []sdktrace.SpanExporter
	syncers   []sdktrace.SpanExporter
	logBase   slog.Handler
	logOut    io.Writer
	logLevel  slog.Leveler
}

// Option configures Setup.
type Option func(*options)

// WithSpanExporter adds an exporter fed through a batching processor, beside the OTLP
// exporter of Config.OTLPEndpoint. Shutdown shuts it down.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(o *options) { o.exporters = append(o.exporters, exp) }
}

// WithSyncSpanExporter adds an exporter that receives each span as it ends, for tests
// that must see a span the moment its operation returns. Shutdown shuts it down.
func WithSyncSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(o *options) { o.syncers = append(o.syncers, exp) }
}

// WithLogHandler sets the handler Logger's records go to after trace ids are added
// (default JSON on stderr at WithLogLevel's level).
func WithLogHandler(h slog.Handler) Option {
	return func(o *options) { o.logBase = h }
}

// WithLogOutput sets where the default JSON log handler writes (default os.Stderr).
func WithLogOutput(w io.Writer) Option {
	return func(o *options) { o.logOut = w }
}

// WithLogLevel sets the minimum level of the default JSON log handler (default INFO).
func WithLogLevel(l slog.Leveler) Option {
	return func(o *options) { o.logLevel = l }
}

// Setup builds the OpenTelemetry pipeline of a process from cfg and installs it as the
// global tracer provider, meter provider and W3C propagator, so instrumentation that
// uses the otel globals reports through it. Call it once per process, first thing in
// main, and defer Shutdown. The meter provider is built by the first Setup of the
// process and shared by later ones (see processMetrics), which only tests make.
//
// The global tracer provider routes each span to the right service (see NewContext):
// in a process running one service it is simply that service's provider.
//
// Setup returns Config.Validate's error for a bad config, and the exporter's error if
// the OTLP or Prometheus exporter cannot be built; it does not wait for the collector,
// which may come up later (spans are dropped until it does).
func Setup(ctx context.Context, cfg Config, opts ...Option) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{logOut: os.Stderr, logLevel: slog.LevelInfo}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.ServiceVersion == "" {
		cfg.ServiceVersion = buildVersion()
	}
	if cfg.Environment == "" {
		cfg.Environment = DefaultEnvironment
	}

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &pipeline{
		cfg:      cfg,
		res:      res,
		sampler:  sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio)),
		services: make(map[string]*Telemetry),
	}

	exporters := o.exporters
	if cfg.OTLPEndpoint != "" {
		exp, err := otlptracegrpc.New(ctx, otlpOptions(cfg)...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp exporter %s: %w", cfg.OTLPEndpoint, err)
		}
		exporters = append(exporters, exp)
	}
	for _, e := range exporters {
		p.exporters = append(p.exporters, keepOpen{e})
		p.closers = append(p.closers, e)
	}
	for _, e := range o.syncers {
		p.syncers = append(p.syncers, keepOpen{e})
		p.closers = append(p.closers, e)
	}
	if len(p.exporters) == 0 && len(p.syncers) == 0 {
		// Nothing would ever see a span this process starts, and recording one
		// (attributes, events, timings) was the largest allocator on the read path,
		// so GC ran far more often. New traces still get ids, for the logs and for
		// the services called; a caller that sampled its trace is still honoured.
		p.sampler = sdktrace.ParentBased(sdktrace.NeverSample())
	}

	m, err := processMetrics(res)
	if err != nil {
		return nil, err
	}
	p.mp, p.metrics = m.mp, m.handler

	p.logBase = o.logBase
	if p.logBase == nil {
		p.logBase = slog.NewJSONHandler(o.logOut, &slog.HandlerOptions{Level: o.logLevel})
	}

	root := &Telemetry{
		name:   cfg.ServiceName,
		tp:     p.newTracerProvider(res),
		logger: slog.New(NewLogHandler(p.logBase)),
		shared: p,
	}
	p.root = root
	p.services[cfg.ServiceName] = root

	otel.SetTracerProvider(&router{root: root})
	if otel.GetMeterProvider() != metric.MeterProvider(p.mp) {
		otel.SetMeterProvider(p.mp)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return root, nil
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(
			semconv.ServiceName(cfg.ServiceName),
			semconv.ServiceVersion(cfg.ServiceVersion),
			semconv.ServiceInstanceID(uuid.NewString()),
			semconv.DeploymentEnvironmentNameKey.String(cfg.Environment),
		),
	)
	// A partial resource (one detector failed) is still worth reporting with.
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

func otlpOptions(cfg Config) []otlptracegrpc.Option {
	var opts []otlptracegrpc.Option
	if strings.Contains(cfg.OTLPEndpoint, "://") {
		// An http:// URL already means plaintext to the exporter.
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint))
		if !cfg.OTLPTLS {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
	}
	return opts
}

func (p *pipeline) newTracerProvider(res *resource.Resource) *sdktrace.TracerProvider {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(p.sampler),
	}
	for _, e := range p.syncers {
		opts = append(opts, sdktrace.WithSyncer(e))
	}
	for _, e := range p.exporters {
		opts = append(opts, sdktrace.WithBatcher(e))
	}
	return sdktrace.NewTracerProvider(opts...)
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// ForService returns the telemetry of the service called name running in this
// process: spans it starts carry service.name=name and otherwise the same resource,
// logs carry service=name, and exporters, sampler and meter provider are shared.
// Calling it again with the same name returns the same value; the name of the Setup
// config returns the root itself.
func (t *Telemetry) ForService(name string) *Telemetry {
	p := t.shared
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.services[name]; ok {
		return s
	}
	res, err := resource.Merge(p.res, resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name)))
	if err != nil {
		// Only conflicting schema URLs make Merge fail, and both sides use ours.
		otel.Handle(fmt.Errorf("telemetry: resource for %s: %w", name, err))
		res = p.res
	}
	s := &Telemetry{
		name:   name,
		tp:     p.newTracerProvider(res),
		logger: slog.New(NewLogHandler(p.logBase)).With("service", name),
		shared: p,
	}
	p.services[name] = s
	return s
}

// ServiceName returns the service.name this telemetry reports.
func (t *Telemetry) ServiceName() string { return t.name }

// TracerProvider returns the service's own tracer provider, for instrumentation that
// takes one explicitly (otelhttp.WithTracerProvider, otelgrpc.WithTracerProvider).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// Tracer returns a tracer of the service's provider.
func (t *Telemetry) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return t.tp.Tracer(name, opts...)
}

// MeterProvider returns the process's meter provider (also the global one).
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.shared.mp }

// MetricsHandler serves every metric of the process in the Prometheus text format,
// Go runtime and process metrics included; mount it on /metrics.
func (t *Telemetry) MetricsHandler() http.Handler { return t.shared.metrics }

// Logger returns a logger whose records carry trace_id and span_id when logged with a
// context holding a span, and service=name for a ForService view.
func (t *Telemetry) Logger() *slog.Logger { return t.logger }

// ForceFlush exports every ended span of every service of the process now. It returns
// the exporters' errors joined, or ctx's error if it ends first.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, s := range t.shared.all() {
		if err := s.tp.ForceFlush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: flush %s: %w", s.name, err))
		}
	}
	if err := t.shared.mp.ForceFlush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: flush metrics: %w", err))
	}
	return errors.Join(errs...)
}

// Shutdown flushes and stops the trace pipeline of the process, whichever service's
// view it is called on: every service's spans are exported, then the exporters close.
// Spans started afterwards are dropped; metrics stay served. A second call does
// nothing. It returns the exporters' errors joined, or ctx's error if it ends first.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	p := t.shared
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	var errs []error
	for _, s := range p.all() {
		if err := s.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shutdown %s: %w", s.name, err))
		}
	}
	for _, e := range p.closers {
		if err := e.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shutdown exporter: %w", err))
		}
	}
	// The meter provider stays: it is process-wide (see processMetrics), and with a
	// pull exporter there is nothing to flush.
	return errors.Join(errs...)
}

// all returns the root first, then every derived service.
func (p *pipeline) all() []*Telemetry {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []*Telemetry{p.root}
	for _, s := range p.services {
		if s != p.root {
			out = append(out, s)
		}
	}
	return out
}

// keepOpen lets several tracer providers share one exporter: each provider's
// Shutdown flushes its own batch but must not close the exporter under the others.
type keepOpen struct{ sdktrace.SpanExporter }

func (keepOpen) Shutdown(context.Context) error { return nil }

var _ sdktrace.SpanExporter = keepOpen{}

// metricsPipeline is the meter provider of the process and its /metrics handler.
type metricsPipeline struct {
	mp      *sdkmetric.MeterProvider
	handler http.Handler
}

var (
	metricsOnce sync.Once
	metricsProc metricsPipeline
	metricsErr  error
)

// processMetrics builds the meter provider once per process. Instrumented packages
// create their instruments once, on whatever global provider exists then, and the otel
// globals never move an instrument to a provider installed later; a second meter
// provider would therefore miss them. So every Setup of a process (tests call it many
// times) shares the first one, named after the first Setup's resource.
func processMetrics(res *resource.Resource) (metricsPipeline, error) {
	metricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		// Explicit, so names do not change with the exporter's default:
		// saga.duration in seconds is exposed as saga_duration_seconds.
		promExp, err := otelprom.New(otelprom.WithRegisterer(reg),
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
			// Every series carries the version, so queries (canary analysis, a
			// dashboard split by version) tell a canary from the stable version.
			otelprom.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter(semconv.ServiceVersionKey)))
		if err != nil {
			metricsErr = fmt.Errorf("telemetry: prometheus exporter: %w", err)
			return
		}
		metricsProc = metricsPipeline{
			mp: sdkmetric.NewMeterProvider(
				sdkmetric.WithResource(res),
				sdkmetric.WithReader(promExp),
				sdkmetric.WithView(sdkmetric.NewView(
					sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
					sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: DurationBuckets}},
				)),
			),
			handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		}
	})
	return metricsProc, metricsErr
}
