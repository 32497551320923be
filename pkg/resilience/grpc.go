package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Dial returns a client connection to target whose every call runs through a fresh
// Policy built from opts: deadline, bulkhead, breaker, retry, outermost first. Every
// attempt is traced and measured by otelgrpc (client span, W3C trace context in the
// request metadata, rpc.client.* metrics) through the global providers unless
// WithTracerProvider names another. The
// connection is plaintext unless WithDialOptions supplies transport credentials (in
// the cluster, Istio adds mTLS). Like grpc.NewClient it does not connect eagerly; it
// returns grpc.NewClient's error for a malformed target or conflicting options.
func Dial(target string, opts ...Option) (*grpc.ClientConn, error) {
	cfg := newConfig(target, opts)
	p := newGroups(cfg)
	name := cfg.name
	dialOpts := make([]grpc.DialOption, 0, 4+len(cfg.dialOpts))
	dialOpts = append(dialOpts,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The stats handler sees each attempt on the wire, inside the policy: a retried
		// call shows one client span per attempt, and a call the policy rejects none
		// (the rejection is an event on the caller's span instead).
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(cfg.tracerProvider()))),
		grpc.WithChainUnaryInterceptor(propagateUnary, p.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(propagateStream, p.StreamClientInterceptor()),
	)
	dialOpts = append(dialOpts, cfg.dialOpts...)
	cc, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("resilience: dial %s: %w", name, err)
	}
	return cc, nil
}

// groups is the policies of one connection, one per method group (WithMethodGroups),
// made on first use.
type groups struct {
	cfg    config
	main   *Policy
	mu     sync.Mutex
	byName map[string]*Policy
}

func newGroups(cfg config) *groups {
	return &groups{cfg: cfg, main: newPolicy(cfg), byName: map[string]*Policy{}}
}

func (g *groups) policy(method string) *Policy {
	if g.cfg.group == nil {
		return g.main
	}
	name := g.cfg.group(method)
	if name == "" {
		return g.main
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.byName[name]
	if !ok {
		cfg := g.cfg
		cfg.name = g.cfg.name + "/" + name
		p = newPolicy(cfg)
		g.byName[name] = p
	}
	return p
}

func (g *groups) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return g.policy(method).unary(ctx, method, req, reply, cc, invoker, opts...)
	}
}

func (g *groups) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return g.policy(method).stream(ctx, desc, cc, method, streamer, opts...)
	}
}

// idempotentOption marks one call as safe to retry; gRPC itself ignores it.
type idempotentOption struct{ grpc.EmptyCallOption }

// Idempotent marks a single unary call as safe to retry, for methods not listed in
// WithIdempotentMethods.
func Idempotent() grpc.CallOption { return idempotentOption{} }

// UnaryClientInterceptor returns the unary chain of a new Policy for the target called
// name. Build it once per target and share it: each call builds a new breaker.
func UnaryClientInterceptor(name string, opts ...Option) grpc.UnaryClientInterceptor {
	return NewPolicy(name, opts...).UnaryClientInterceptor()
}

// StreamClientInterceptor returns the stream chain of a new Policy for the target
// called name. Use Policy.StreamClientInterceptor to share a breaker with unary calls.
func StreamClientInterceptor(name string, opts ...Option) grpc.StreamClientInterceptor {
	return NewPolicy(name, opts...).StreamClientInterceptor()
}

// UnaryClientInterceptor returns the policy's unary chain. A rejected call fails with
// codes.ResourceExhausted (bulkhead full, errors.Is ErrBulkheadFull) or
// codes.Unavailable (circuit open, errors.Is ErrCircuitOpen); otherwise the call's own
// error is returned, after retries when the call is idempotent.
func (p *Policy) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return p.unary
}

func (p *Policy) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := p.withDefaultDeadline(ctx)
	if cancel != nil {
		defer cancel()
	}
	if err := p.acquire(ctx); err != nil {
		return grpcError(err)
	}
	defer p.release(ctx)
	done, err := p.allow(ctx)
	if err != nil {
		return err
	}
	var start time.Time // the total-time bound runs from the first attempt
	if p.cfg.maxAttempts > 1 {
		start = time.Now()
	}
	err = invoker(ctx, method, req, reply, cc, opts...)
	if err != nil && p.cfg.maxAttempts > 1 && p.idempotent(method, opts) {
		err = p.retryUnary(ctx, err, start, method, req, reply, cc, invoker, opts)
	}
	done(classifyGRPC(ctx, err))
	return err
}

// retryUnary retries a failed idempotent call while its code is retryable and the
// bounds allow, and returns the last error.
func (p *Policy) retryUnary(ctx context.Context, err error, start time.Time, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	for n := 1; retryableGRPC(ctx, err) && p.waitRetry(ctx, n, start); n++ {
		if err = invoker(ctx, method, req, reply, cc, opts...); err == nil {
			return nil
		}
	}
	return err
}

func (p *Policy) idempotent(method string, opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(idempotentOption); ok {
			return true
		}
	}
	return p.cfg.idempotentMethod(method)
}

// retryableGRPC: the target was briefly unable to serve. A DeadlineExceeded is the
// attempt's own (e.g. a server-side deadline) only while the caller's context is live.
func retryableGRPC(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return ctx.Err() == nil
	}
	return false
}

// classifyGRPC maps a call's result to a breaker outcome: only codes that say the
// target is unhealthy count as failures; answers (NotFound, InvalidArgument, ...) are
// successes; the caller cancelling, or the target answering that one of its own
// dependencies is unavailable, is not the target's failure.
func classifyGRPC(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if callerCanceled(ctx, err) || IsDependencyUnavailable(err) {
		return errExcluded
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal:
		return errFailure
	case codes.Canceled:
		return errExcluded
	}
	return nil
}

// grpcError turns an error from acquire into a status error.
func grpcError(err error) error {
	var r *rejection
	if errors.As(err, &r) {
		return err
	}
	return status.FromContextError(err).Err()
}

// StreamClientInterceptor returns the policy's stream chain. Deadline, bulkhead and
// breaker guard only the stream's establishment (a long-lived stream neither holds a
// slot nor inherits the default timeout); streams are never retried. It returns the
// same rejection errors as UnaryClientInterceptor, and codes.DeadlineExceeded when
// establishment outlives the default timeout.
func (p *Policy) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return p.stream
}

const (
	streamPending int32 = iota
	streamEstablished
	streamTimedOut
)

func (p *Policy) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	_, hasDeadline := ctx.Deadline()
	bounded := !hasDeadline && p.cfg.timeout > 0

	// A timer bounds establishment only; once the stream exists it lives as long as
	// the caller's context.
	var (
		cancel context.CancelFunc
		timer  *time.Timer
		state  atomic.Int32
	)
	if bounded {
		ctx, cancel = context.WithCancel(ctx)
		timer = time.AfterFunc(p.cfg.timeout, func() {
			if state.CompareAndSwap(streamPending, streamTimedOut) {
				cancel()
			}
		})
		defer timer.Stop()
	}

	if err := p.acquire(ctx); err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, grpcError(err)
	}
	defer p.release(ctx)
	done, err := p.allow(ctx)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if !bounded {
		done(classifyGRPC(ctx, err))
		return cs, err
	}
	if !state.CompareAndSwap(streamPending, streamEstablished) {
		// Our timer cancelled the context: the target was too slow, not the caller.
		done(errFailure)
		cancel()
		return nil, status.Errorf(codes.DeadlineExceeded, "%s: stream establishment exceeded %s", p.name, p.cfg.timeout)
	}
	done(classifyGRPC(ctx, err))
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelOnEnd{ClientStream: cs, cancel: cancel}, nil
}

// cancelOnEnd releases the establishment context once the stream has ended, which a
// caller signals by reading until RecvMsg fails (io.EOF included), as gRPC requires.
type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

var (
	_ grpc.ClientStream = (*cancelOnEnd)(nil)
	_ grpc.CallOption   = idempotentOption{}
)
