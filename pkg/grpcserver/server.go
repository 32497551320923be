// Package grpcserver builds the gRPC server every service runs: panic recovery,
// optional bearer-token authentication, protovalidate request validation, health and
// reflection, and a graceful, bounded shutdown driven by a context.
package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"time"

	"buf.build/go/protovalidate"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/telemetry"
)

// DefaultDrainTimeout bounds how long Serve waits for in-flight RPCs after its
// context is done before it cuts them off.
const DefaultDrainTimeout = 10 * time.Second

// Server is a *grpc.Server with the standard interceptors, health and reflection
// installed. Register services on GRPC() before calling Serve.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	logger *slog.Logger
	drain  time.Duration
	tracer *telemetry.DeferredTracerProvider
}

type options struct {
	logger     *slog.Logger
	drain      time.Duration
	validator  protovalidate.Validator
	auth       []grpc.UnaryServerInterceptor
	authStream []grpc.StreamServerInterceptor
	unary      []grpc.UnaryServerInterceptor
	stream     []grpc.StreamServerInterceptor
	serverOpts []grpc.ServerOption
}

// Option configures New.
type Option func(*options)

// WithLogger sets the logger for recovered panics and shutdown; slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithDrainTimeout bounds the graceful stop in Serve (DefaultDrainTimeout otherwise).
// When it expires, remaining RPCs are cancelled.
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.drain = d
		}
	}
}

// WithValidator replaces the default protovalidate validator.
func WithValidator(v protovalidate.Validator) Option {
	return func(o *options) {
		if v != nil {
			o.validator = v
		}
	}
}

// WithAuthInterceptors installs authentication between recovery and validation, so
// an unauthenticated caller learns nothing about its request's validity. Nil
// interceptors are skipped.
func WithAuthInterceptors(unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor) Option {
	return func(o *options) {
		if unary != nil {
			o.auth = append(o.auth, unary)
		}
		if stream != nil {
			o.authStream = append(o.authStream, stream)
		}
	}
}

// WithVerifier authenticates every call with the bearer token verified by v (see
// auth.UnaryServerInterceptor); opts typically name public methods with
// auth.WithAccess. A nil v leaves the server unauthenticated.
func WithVerifier(v *auth.Verifier, opts ...auth.InterceptorOption) Option {
	return func(o *options) {
		if v == nil {
			return
		}
		o.auth = append(o.auth, auth.UnaryServerInterceptor(v, opts...))
		o.authStream = append(o.authStream, auth.StreamServerInterceptor(v, opts...))
	}
}

// WithUnaryInterceptors adds interceptors that run after validation, closest to the
// handler.
func WithUnaryInterceptors(in ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.unary = append(o.unary, in...) }
}

// WithStreamInterceptors adds stream interceptors that run after validation.
func WithStreamInterceptors(in ...grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.stream = append(o.stream, in...) }
}

// WithServerOptions passes extra options (e.g. a stats handler) to grpc.NewServer.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// New builds a Server. It panics only if the default protovalidate validator cannot
// be built, which is a programming error, not a runtime condition.
func New(opts ...Option) *Server {
	o := options{logger: slog.Default(), drain: DefaultDrainTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.validator == nil {
		v, err := protovalidate.New()
		if err != nil {
			panic("grpcserver: protovalidate: " + err.Error())
		}
		o.validator = v
	}

	unary := []grpc.UnaryServerInterceptor{recoverUnary(o.logger)}
	unary = append(unary, o.auth...)
	unary = append(unary, validateUnary(o.validator, o.logger))
	unary = append(unary, o.unary...)

	stream := []grpc.StreamServerInterceptor{recoverStream(o.logger)}
	stream = append(stream, o.authStream...)
	stream = append(stream, validateStream(o.validator, o.logger))
	stream = append(stream, o.stream...)

	// Server spans belong to the service whose context Serve receives (telemetry.NewContext),
	// which only arrives after New: the provider is bound then.
	tracer := &telemetry.DeferredTracerProvider{}
	serverOpts := append([]grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tracer))),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Calls run on a pool of goroutines that live on, instead of a fresh one per
		// call: a handler that reaches SQLite (transpiled C, deep frames) grows a new
		// goroutine's stack several times over, and those copies were 5% of the read
		// path's CPU. Calls beyond the pool still get their own goroutine.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}, o.serverOpts...)

	s := &Server{
		grpc:   grpc.NewServer(serverOpts...),
		health: health.NewServer(),
		logger: o.logger,
		drain:  o.drain,
		tracer: tracer,
	}
	// Not serving until Serve runs: a probe must not route traffic to a server that
	// has not started accepting.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s
}

// GRPC returns the underlying server, to register services on before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the health server, to set a per-service status. Serve sets the
// overall ("") status.
func (s *Server) Health() *health.Server { return s.health }

// Serve accepts RPCs on lis until ctx is done, then reports NOT_SERVING, lets
// in-flight RPCs finish for at most the drain timeout, cancels whatever is left and
// returns nil. Long-lived streams (such as health Watch) hold the drain until the
// timeout. It returns the listener's error if serving fails before ctx is done.
// Serve closes lis. A Server serves only once. Every RPC is traced and measured by
// otelgrpc; its server spans belong to the service telemetry.NewContext put on ctx,
// or to the process's global tracer provider when ctx names none.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.tracer.Bind(ctx)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()

	select {
	case err := <-errc:
		s.health.Shutdown()
		if err == nil || errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	case <-ctx.Done():
	}

	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.drain)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("grpc drain timeout expired, cancelling remaining RPCs", "addr", lis.Addr().String(), "drain_timeout", s.drain)
		// Stop cancels the RPCs' contexts but does not wait for their handlers, so a
		// handler that ignores its context cannot hold Serve forever.
		s.grpc.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
