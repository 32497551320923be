package resilience

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

// rejectLogEvery bounds rejection logging: a flood of fail-fast calls produces one
// line per interval carrying the count, not one line per call.
const rejectLogEvery = 10 * time.Second

// Policy is the resilience state of one target: its bulkhead slots and its breaker.
// Every call to the same target must go through the same Policy, which is why Dial
// builds one per connection. A Policy is safe for concurrent use.
type Policy struct {
	name string
	cfg  config
	log  *slog.Logger

	sem chan struct{}
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]

	errOpen *rejection
	errFull *rejection

	inst     *instruments
	attrs    attribute.Set
	addAttrs []metric.AddOption

	unloggedBreaker  atomic.Int64
	unloggedBulkhead atomic.Int64
	lastRejectLog    atomic.Int64
}

// NewPolicy returns the policy for the target called name, configured by opts (see the
// Default constants for what is applied when an option is absent).
func NewPolicy(name string, opts ...Option) *Policy {
	return newPolicy(newConfig(name, opts))
}

func newPolicy(cfg config) *Policy {
	p := &Policy{
		name:    cfg.name,
		cfg:     cfg,
		log:     cfg.logger,
		errOpen: newRejection(cfg.name, ErrCircuitOpen, codes.Unavailable),
		errFull: newRejection(cfg.name, ErrBulkheadFull, codes.ResourceExhausted),
		inst:    meterInstruments(),
		attrs:   attribute.NewSet(attribute.String("target", cfg.name)),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.addAttrs = []metric.AddOption{metric.WithAttributeSet(p.attrs)}
	// Every counter of the target exists from the start at zero: a rate over a
	// series that appears only at its first rejection hides that first one, and an
	// alert or dashboard naming it would find nothing until then.
	for _, c := range []metric.Int64Counter{p.inst.breakerRejections, p.inst.bulkheadRejections, p.inst.retries} {
		c.Add(context.Background(), 0, p.addAttrs...)
	}
	if cfg.maxConcurrent > 0 {
		p.sem = make(chan struct{}, cfg.maxConcurrent)
	}
	if cfg.failures > 0 {
		threshold := cfg.failures
		p.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:          cfg.name,
			MaxRequests:   1,
			Timeout:       cfg.openFor,
			ReadyToTrip:   func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
			IsSuccessful:  func(err error) bool { return err == nil },
			IsExcluded:    func(err error) bool { return err == errExcluded },
			OnStateChange: p.onStateChange,
		})
		p.recordState(gobreaker.StateClosed)
	}
	return p
}

// Name returns the target name used in errors, metrics and logs.
func (p *Policy) Name() string { return p.name }

// BreakerState returns the breaker's current state; StateClosed when it is disabled.
func (p *Policy) BreakerState() gobreaker.State {
	if p.cb == nil {
		return gobreaker.StateClosed
	}
	return p.cb.State()
}

// acquire takes a bulkhead slot. It returns p.errFull when none frees up within the
// maximum wait, or ctx.Err() when the caller gives up first.
func (p *Policy) acquire(ctx context.Context) error {
	if p.sem == nil {
		return nil
	}
	select {
	case p.sem <- struct{}{}:
		p.inst.inFlight.Add(ctx, 1, p.addAttrs...)
		return nil
	default:
	}
	// Only a full bulkhead pays for a timer.
	if p.cfg.maxWait > 0 {
		t := time.NewTimer(p.cfg.maxWait)
		defer t.Stop()
		select {
		case p.sem <- struct{}{}:
			p.inst.inFlight.Add(ctx, 1, p.addAttrs...)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	p.inst.bulkheadRejections.Add(ctx, 1, p.addAttrs...)
	p.unloggedBulkhead.Add(1)
	trace.SpanFromContext(ctx).AddEvent("resilience.bulkhead.rejected", trace.WithAttributes(p.attrs.ToSlice()...))
	p.maybeLogRejections(ctx)
	return p.errFull
}

func (p *Policy) release(ctx context.Context) {
	if p.sem == nil {
		return
	}
	<-p.sem
	p.inst.inFlight.Add(ctx, -1, p.addAttrs...)
}

func doneNothing(error) {}

// allow asks the breaker for admission. The returned done must be called with the
// classified outcome (nil, errFailure or errExcluded). It returns p.errOpen when the
// breaker refuses.
func (p *Policy) allow(ctx context.Context) (func(error), error) {
	if p.cb == nil {
		return doneNothing, nil
	}
	done, err := p.cb.Allow()
	if err != nil {
		p.inst.breakerRejections.Add(ctx, 1, p.addAttrs...)
		p.unloggedBreaker.Add(1)
		trace.SpanFromContext(ctx).AddEvent("resilience.breaker.rejected", trace.WithAttributes(p.attrs.ToSlice()...))
		p.maybeLogRejections(ctx)
		return nil, p.errOpen
	}
	return done, nil
}

func (p *Policy) maybeLogRejections(ctx context.Context) {
	now := time.Now().UnixNano()
	last := p.lastRejectLog.Load()
	if now-last < int64(rejectLogEvery) || !p.lastRejectLog.CompareAndSwap(last, now) {
		return
	}
	p.log.WarnContext(ctx, "resilience: calls rejected",
		"target", p.name,
		"breaker_rejections", p.unloggedBreaker.Swap(0),
		"bulkhead_rejections", p.unloggedBulkhead.Swap(0),
		"breaker_state", p.stateForLog(),
	)
}

func (p *Policy) stateForLog() string {
	if p.cb == nil {
		return "disabled"
	}
	return p.cb.State().String()
}

// onStateChange runs inside gobreaker's lock: it must not call back into the breaker.
func (p *Policy) onStateChange(_ string, from, to gobreaker.State) {
	ctx := context.Background()
	p.recordState(to)
	p.inst.breakerTransitions.Add(ctx, 1, metric.WithAttributes(
		attribute.String("target", p.name), attribute.String("state", to.String())))
	level := slog.LevelWarn
	if to == gobreaker.StateClosed {
		level = slog.LevelInfo
	}
	p.log.Log(ctx, level, "resilience: circuit breaker state changed",
		"target", p.name, "from", from.String(), "to", to.String())
}

func (p *Policy) recordState(s gobreaker.State) {
	p.inst.breakerState.Record(context.Background(), int64(s), metric.WithAttributeSet(p.attrs))
}

// backoff returns the full-jitter delay before retry number n (1 for the first retry):
// uniform in [0, min(maxBackoff, baseBackoff*2^(n-1))].
func (p *Policy) backoff(n int) time.Duration {
	ceiling := p.cfg.baseBackoff
	for i := 1; i < n && ceiling < p.cfg.maxBackoff; i++ {
		ceiling *= 2
	}
	if ceiling > p.cfg.maxBackoff {
		ceiling = p.cfg.maxBackoff
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// waitRetry decides whether retry number n may start, given when the first attempt
// began, and sleeps its backoff. It returns false when the attempt bound, the total-time
// bound or the caller's deadline forbids another attempt, or ctx ends while waiting.
func (p *Policy) waitRetry(ctx context.Context, n int, start time.Time) bool {
	if n >= p.cfg.maxAttempts {
		return false
	}
	delay := p.backoff(n)
	if p.cfg.maxTotal > 0 && time.Since(start)+delay >= p.cfg.maxTotal {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
		return false
	}
	if Sleep(ctx, delay) != nil {
		return false
	}
	p.inst.retries.Add(ctx, 1, p.addAttrs...)
	return true
}

// withDefaultDeadline applies the default timeout when ctx has no deadline. The
// returned cancel is nil when ctx was kept as is.
func (p *Policy) withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.cfg.timeout <= 0 {
		return ctx, nil
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, nil
	}
	return context.WithTimeout(ctx, p.cfg.timeout)
}

// callerCanceled reports whether the call ended because the caller cancelled its
// context, which says nothing about the target's health.
func callerCanceled(ctx context.Context, err error) bool {
	return errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled)
}

type instruments struct {
	breakerState       metric.Int64Gauge
	breakerTransitions metric.Int64Counter
	breakerRejections  metric.Int64Counter
	bulkheadRejections metric.Int64Counter
	inFlight           metric.Int64UpDownCounter
	retries            metric.Int64Counter
}

var (
	instOnce sync.Once
	inst     *instruments
)

// meterInstruments creates the package's instruments once, on the global meter
// provider; instruments created before an exporter is installed follow it once it is.
func meterInstruments() *instruments {
	instOnce.Do(func() {
		m := otel.Meter("github.com/eventshop/eventshop/pkg/resilience")
		var nm noop.Meter
		var errs []error
		i := &instruments{}
		var err error
		if i.breakerState, err = m.Int64Gauge("resilience.breaker.state",
			metric.WithDescription("Breaker state per target: 0 closed, 1 half-open, 2 open.")); err != nil {
			i.breakerState, _ = nm.Int64Gauge("")
			errs = append(errs, err)
		}
		if i.breakerTransitions, err = m.Int64Counter("resilience.breaker.transitions",
			metric.WithDescription("Breaker state changes, by target and new state.")); err != nil {
			i.breakerTransitions, _ = nm.Int64Counter("")
			errs = append(errs, err)
		}
		if i.breakerRejections, err = m.Int64Counter("resilience.breaker.rejections",
			metric.WithDescription("Calls failed fast by an open breaker.")); err != nil {
			i.breakerRejections, _ = nm.Int64Counter("")
			errs = append(errs, err)
		}
		if i.bulkheadRejections, err = m.Int64Counter("resilience.bulkhead.rejections",
			metric.WithDescription("Calls failed fast by a full bulkhead.")); err != nil {
			i.bulkheadRejections, _ = nm.Int64Counter("")
			errs = append(errs, err)
		}
		if i.inFlight, err = m.Int64UpDownCounter("resilience.bulkhead.in_flight",
			metric.WithDescription("Calls holding a bulkhead slot.")); err != nil {
			i.inFlight, _ = nm.Int64UpDownCounter("")
			errs = append(errs, err)
		}
		if i.retries, err = m.Int64Counter("resilience.retries",
			metric.WithDescription("Retry attempts started after a retryable failure.")); err != nil {
			i.retries, _ = nm.Int64Counter("")
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			otel.Handle(errors.Join(errs...))
		}
		inst = i
	})
	return inst
}
