package telemetry

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// A span's service.name is fixed by the resource of the provider that starts it, so a
// process running several services (shopd) needs one provider per service, and
// shared instrumentation (messaging, saga, resilience, otelgrpc) that only knows the
// global provider needs to be told which one to use. The global provider installed by
// Setup is a router that picks, for each span:
//
//  1. the provider of the local parent span, if the context holds one: work done
//     inside a service's span stays in that service;
//  2. else the service of NewContext, which a process puts on the context it runs a
//     service with, so consumers and background loops started from it are that
//     service's;
//  3. else the service of Setup.
//
// A gRPC server is the one place where neither holds (its handlers' contexts do not
// derive from the service's); DeferredTracerProvider covers it.

type serviceKey struct{}

// NewContext returns a copy of ctx in which spans without a local parent are started
// by svc's tracer provider. Run a service with it in a process hosting several.
func NewContext(ctx context.Context, svc *Telemetry) context.Context {
	return context.WithValue(ctx, serviceKey{}, svc)
}

// FromContext returns the service NewContext put on ctx, or nil.
func FromContext(ctx context.Context) *Telemetry {
	t, _ := ctx.Value(serviceKey{}).(*Telemetry)
	return t
}

// router is the global tracer provider; see the comment above.
type router struct {
	embedded.TracerProvider
	root *Telemetry
	// Instrumentation tends to call otel.Tracer(name) for every span; tracers without
	// options are kept so each call does not start a fresh cache.
	tracers sync.Map // name -> *routedTracer
}

func (r *router) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	if len(opts) > 0 {
		return &routedTracer{root: r.root, name: name, opts: opts}
	}
	if t, ok := r.tracers.Load(name); ok {
		return t.(*routedTracer)
	}
	t, _ := r.tracers.LoadOrStore(name, &routedTracer{root: r.root, name: name})
	return t.(*routedTracer)
}

type routedTracer struct {
	embedded.Tracer
	root *Telemetry
	name string
	opts []trace.TracerOption

	// The SDK caches tracers too, behind a mutex; this keeps the hot path lock-free.
	tracers sync.Map // trace.TracerProvider -> trace.Tracer
}

func (t *routedTracer) Start(ctx context.Context, spanName string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.tracerFor(route(ctx, t.root.tp)).Start(ctx, spanName, opts...)
}

func (t *routedTracer) tracerFor(tp trace.TracerProvider) trace.Tracer {
	if tr, ok := t.tracers.Load(tp); ok {
		return tr.(trace.Tracer)
	}
	tr, _ := t.tracers.LoadOrStore(tp, tp.Tracer(t.name, t.opts...))
	return tr.(trace.Tracer)
}

// route picks the provider for a span started with ctx, fallback when nothing on ctx
// names one.
func route(ctx context.Context, fallback trace.TracerProvider) trace.TracerProvider {
	// A remote parent (extracted from headers) reports a no-op provider; only a span
	// this process started reports the SDK provider that made it.
	if tp, ok := trace.SpanFromContext(ctx).TracerProvider().(*sdktrace.TracerProvider); ok {
		return tp
	}
	if svc := FromContext(ctx); svc != nil {
		return svc.tp
	}
	return fallback
}

// DeferredTracerProvider is a tracer provider for instrumentation that must be built
// before it is known which service it serves, such as a gRPC server's stats handler
// built in a constructor while the service's context only arrives with Serve. Until
// Bind, and when Bind finds no service, spans go to the global provider.
//
// The zero value is ready to use. It is safe for concurrent use.
type DeferredTracerProvider struct {
	embedded.TracerProvider
	bound atomic.Pointer[Telemetry]
}

var (
	_ trace.TracerProvider = (*DeferredTracerProvider)(nil)
	_ trace.TracerProvider = (*router)(nil)
	_ trace.Tracer         = (*routedTracer)(nil)
	_ trace.Tracer         = (*deferredTracer)(nil)
)

// Bind sends the provider's spans to the service NewContext put on ctx from now on;
// it leaves the provider unchanged when ctx holds none.
func (d *DeferredTracerProvider) Bind(ctx context.Context) {
	if svc := FromContext(ctx); svc != nil {
		d.bound.Store(svc)
	}
}

// Tracer returns a tracer that resolves the bound service at each span start.
func (d *DeferredTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &deferredTracer{d: d, name: name, opts: opts}
}

type deferredTracer struct {
	embedded.Tracer
	d       *DeferredTracerProvider
	name    string
	opts    []trace.TracerOption
	tracers sync.Map // trace.TracerProvider -> trace.Tracer
}

func (t *deferredTracer) Start(ctx context.Context, spanName string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	var tp trace.TracerProvider
	if svc := t.d.bound.Load(); svc != nil {
		tp = svc.tp
	} else {
		tp = otel.GetTracerProvider()
	}
	tr, ok := t.tracers.Load(tp)
	if !ok {
		tr, _ = t.tracers.LoadOrStore(tp, tp.Tracer(t.name, t.opts...))
	}
	return tr.(trace.Tracer).Start(ctx, spanName, opts...)
}
