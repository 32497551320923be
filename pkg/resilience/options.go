package resilience

import (
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Defaults applied by Dial, NewPolicy and NewPublisher when no option overrides them.
const (
	DefaultTimeout             = 5 * time.Second
	DefaultMaxConcurrent       = 64
	DefaultMaxWait             = 50 * time.Millisecond
	DefaultConsecutiveFailures = 5
	DefaultOpenFor             = 10 * time.Second
	DefaultMaxAttempts         = 3
	DefaultBaseBackoff         = 50 * time.Millisecond
	DefaultMaxBackoff          = time.Second
	DefaultMaxTotal            = 2 * time.Second
)

// Option configures a Policy, and through it Dial and NewPublisher.
type Option func(*config)

type config struct {
	name string

	timeout time.Duration

	maxConcurrent int
	maxWait       time.Duration

	failures uint32
	openFor  time.Duration

	maxAttempts int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	maxTotal    time.Duration

	idempotentExact    map[string]struct{}
	idempotentPrefixes []string

	dialOpts []grpc.DialOption
	logger   *slog.Logger
	tracer   trace.TracerProvider

	group func(fullMethod string) string
}

func defaultConfig() config {
	return config{
		timeout:       DefaultTimeout,
		maxConcurrent: DefaultMaxConcurrent,
		maxWait:       DefaultMaxWait,
		failures:      DefaultConsecutiveFailures,
		openFor:       DefaultOpenFor,
		maxAttempts:   DefaultMaxAttempts,
		baseBackoff:   DefaultBaseBackoff,
		maxBackoff:    DefaultMaxBackoff,
		maxTotal:      DefaultMaxTotal,
	}
}

// newConfig applies opts over the defaults; name is used unless WithName overrides it.
func newConfig(name string, opts []Option) config {
	cfg := defaultConfig()
	cfg.name = name
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.name == "" {
		cfg.name = name
	}
	return cfg
}

// WithName sets the target name used in errors, metrics and logs ("catalog").
// Dial defaults it to the dial target.
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithTimeout sets the deadline applied to a call whose context has none
// (default DefaultTimeout). A caller's own deadline is always kept, even a longer one.
// A value <= 0 applies no default deadline.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithBulkhead bounds the calls in flight to the target at maxConcurrent (default
// DefaultMaxConcurrent). A call that finds no free slot waits at most maxWait (default
// DefaultMaxWait) and then fails with ResourceExhausted / ErrBulkheadFull.
// maxConcurrent <= 0 disables the bulkhead.
func WithBulkhead(maxConcurrent int, maxWait time.Duration) Option {
	return func(c *config) {
		c.maxConcurrent = maxConcurrent
		c.maxWait = maxWait
	}
}

// WithMethodGroups gives each group of a connection's methods its own bulkhead and
// breaker: group maps a full method name ("/pkg.Service/Method") to its group, and
// methods of one group share them ("" is the target's main group). A dependency that
// fails only some methods (a read model while writes go on) then opens only their
// breaker. Each group reports as target "<name>/<group>". Used by Dial.
func WithMethodGroups(group func(fullMethod string) string) Option {
	return func(c *config) { c.group = group }
}

// WithBreaker opens the target's circuit after consecutiveFailures failures in a row
// (default DefaultConsecutiveFailures) and keeps it open for openFor (default
// DefaultOpenFor) before letting one probe call through. consecutiveFailures == 0
// disables the breaker.
func WithBreaker(consecutiveFailures uint32, openFor time.Duration) Option {
	return func(c *config) {
		c.failures = consecutiveFailures
		c.openFor = openFor
	}
}

// WithRetry bounds retries of idempotent calls: at most maxAttempts attempts in all
// (default DefaultMaxAttempts), waiting a full-jitter exponential backoff between
// baseBackoff and maxBackoff, and never starting an attempt whose backoff would end
// after maxTotal since the first attempt began. maxAttempts <= 1 disables retries.
func WithRetry(maxAttempts int, baseBackoff, maxBackoff, maxTotal time.Duration) Option {
	return func(c *config) {
		c.maxAttempts = maxAttempts
		c.baseBackoff = baseBackoff
		c.maxBackoff = maxBackoff
		c.maxTotal = maxTotal
	}
}

// WithIdempotentMethods marks gRPC methods as safe to retry. Each entry is a full
// method ("/eventshop.catalog.v1.CatalogService/GetProduct") or, ending in "/", a
// whole service ("/eventshop.catalog.v1.CatalogService/").
func WithIdempotentMethods(fullMethods ...string) Option {
	return func(c *config) {
		for _, m := range fullMethods {
			if strings.HasSuffix(m, "/") {
				c.idempotentPrefixes = append(c.idempotentPrefixes, m)
				continue
			}
			if c.idempotentExact == nil {
				c.idempotentExact = make(map[string]struct{})
			}
			c.idempotentExact[m] = struct{}{}
		}
	}
}

// WithDialOptions adds gRPC dial options after Dial's own (plaintext credentials and the
// resilience interceptors), so transport credentials given here replace plaintext.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithLogger sets the logger for breaker state changes and rate-limited rejection
// reports (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithTracerProvider sets the tracer provider of Dial's client spans (default the
// global one: the provider installed by then, or, before any is, the one installed
// later).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracer = tp }
}

func (c *config) tracerProvider() trace.TracerProvider {
	if c.tracer != nil {
		return c.tracer
	}
	return otel.GetTracerProvider()
}

func (c *config) idempotentMethod(method string) bool {
	if _, ok := c.idempotentExact[method]; ok {
		return true
	}
	for _, p := range c.idempotentPrefixes {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}
