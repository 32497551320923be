// Package gateway is eventshop's HTTP front door: the public JSON API (grpc-gateway
// over resilient gRPC clients), OIDC login, and the server-rendered storefront pages,
// with rate limits, security headers, CORS, health, readiness and metrics.
package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/telemetry"
)

// Defaults of Config.
const (
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultCatalogAddr     = "127.0.0.1:9401"
	DefaultCartAddr        = "127.0.0.1:9402"
	DefaultOrderAddr       = "127.0.0.1:9403"
	DefaultPaymentAddr     = "127.0.0.1:9404"
	DefaultInventoryAddr   = "127.0.0.1:9405"
	DefaultShippingAddr    = "127.0.0.1:9406"
	DefaultClientID        = "storefront"
	DefaultMaxBodyBytes    = 64 << 10
	DefaultIPRate          = 50
	DefaultIPBurst         = 100
	DefaultUserRate        = 20
	DefaultUserBurst       = 40
	DefaultStreamsPerUser  = 8
	DefaultSessionTTL      = time.Hour
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures the gateway. An empty upstream address means the service is not
// part of this deployment: its routes answer 503 and its pages say it is unavailable.
type Config struct {
	// HTTPAddr is the listen address; ":0" picks a free port (see Gateway.Addr).
	HTTPAddr string
	// PublicURL is the URL browsers reach the gateway at, used for the OAuth redirect
	// (PublicURL + "/auth/callback"). Empty means http://<bound address>.
	PublicURL string

	CatalogAddr   string
	CartAddr      string
	OrderAddr     string
	PaymentAddr   string
	InventoryAddr string
	ShippingAddr  string

	// OIDCIssuer is the issuer the storefront logs users in with. Empty disables
	// login (the API still accepts bearer tokens the Verifier trusts).
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string

	// CORSOrigins lists the origins (comma separated) allowed to call /api/v1/ from
	// a browser; "*" allows any origin (no credentials are ever allowed).
	CORSOrigins string

	// IPRate and IPBurst limit requests per client IP (tokens per second, bucket).
	IPRate  float64
	IPBurst int
	// UserRate and UserBurst limit requests per authenticated user.
	UserRate  float64
	UserBurst int
	// StreamsPerUser bounds the order-status streams one user holds open at once
	// (DefaultStreamsPerUser; see MaxOrderStreamsPerUser's doc for why).
	StreamsPerUser int
	// TrustForwardedFor takes the client IP from the last X-Forwarded-For hop, for a
	// gateway behind a proxy; off, the TCP peer address is the client.
	TrustForwardedFor bool

	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64
	// SessionTTL bounds a storefront session (never longer than its access token).
	SessionTTL time.Duration
	// SessionReplicas is the replica count of the sessions' bucket (Deps.JetStream):
	// 1 on a single NATS server, 3 on a cluster.
	SessionReplicas int
	// ShutdownTimeout bounds the graceful stop of Run.
	ShutdownTimeout time.Duration
}

// RegisterFlags defines the gateway's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", DefaultHTTPAddr, "HTTP listen address")
	fs.StringVar(&c.PublicURL, "public-url", "", "URL browsers use to reach the gateway (OAuth redirect); empty: http://<http-addr>")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog service gRPC address (empty: not deployed)")
	fs.StringVar(&c.CartAddr, "cart-addr", DefaultCartAddr, "cart service gRPC address (empty: not deployed)")
	fs.StringVar(&c.OrderAddr, "order-addr", DefaultOrderAddr, "order service gRPC address (empty: not deployed)")
	fs.StringVar(&c.PaymentAddr, "payment-addr", DefaultPaymentAddr, "payment service gRPC address (empty: not deployed)")
	fs.StringVar(&c.InventoryAddr, "inventory-addr", DefaultInventoryAddr, "inventory service gRPC address (empty: not deployed)")
	fs.StringVar(&c.ShippingAddr, "shipping-addr", DefaultShippingAddr, "shipping service gRPC address (empty: not deployed)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", "", "OIDC issuer for storefront login (empty disables login)")
	fs.StringVar(&c.OIDCClientID, "oidc-client-id", DefaultClientID, "OAuth client id of the storefront")
	fs.StringVar(&c.OIDCClientSecret, "oidc-client-secret", "", "OAuth client secret of the storefront")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "", "comma-separated origins allowed to call the API from a browser")
	fs.Float64Var(&c.IPRate, "rate-ip", DefaultIPRate, "requests per second allowed per client IP")
	fs.IntVar(&c.IPBurst, "rate-ip-burst", DefaultIPBurst, "burst allowed per client IP")
	fs.Float64Var(&c.UserRate, "rate-user", DefaultUserRate, "requests per second allowed per user")
	fs.IntVar(&c.UserBurst, "rate-user-burst", DefaultUserBurst, "burst allowed per user")
	fs.IntVar(&c.StreamsPerUser, "streams-per-user", DefaultStreamsPerUser, "order-status streams one user may hold open at once (a load generator logged in as few users needs more)")
	fs.BoolVar(&c.TrustForwardedFor, "trust-forwarded-for", false, "take the client IP from X-Forwarded-For (behind a proxy only)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "largest request body accepted")
	fs.DurationVar(&c.SessionTTL, "session-ttl", DefaultSessionTTL, "storefront session lifetime")
	fs.IntVar(&c.SessionReplicas, "stream-replicas", 1, "replicas of the sessions' JetStream bucket (3 on a NATS cluster)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "how long in-flight requests may finish at shutdown")
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("http-addr is empty"))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("public-url %q is not an http(s) URL", c.PublicURL))
		}
	}
	if c.OIDCIssuer != "" && c.OIDCClientID == "" {
		errs = append(errs, errors.New("oidc-client-id is empty"))
	}
	if c.IPRate <= 0 || c.IPBurst <= 0 {
		errs = append(errs, fmt.Errorf("rate-ip %v / burst %d must be positive", c.IPRate, c.IPBurst))
	}
	if c.UserRate <= 0 || c.UserBurst <= 0 {
		errs = append(errs, fmt.Errorf("rate-user %v / burst %d must be positive", c.UserRate, c.UserBurst))
	}
	if c.StreamsPerUser <= 0 {
		errs = append(errs, fmt.Errorf("streams-per-user %d must be positive", c.StreamsPerUser))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("max-body-bytes %d must be positive", c.MaxBodyBytes))
	}
	if c.SessionTTL <= 0 {
		errs = append(errs, fmt.Errorf("session-ttl %v must be positive", c.SessionTTL))
	}
	if c.SessionReplicas < 0 || c.SessionReplicas > 5 {
		errs = append(errs, fmt.Errorf("stream-replicas %d must be between 1 and 5", c.SessionReplicas))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown-timeout %v is negative", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero values a Config built in code (not from flags) leaves.
func (c Config) withDefaults() Config {
	if c.OIDCClientID == "" {
		c.OIDCClientID = DefaultClientID
	}
	if c.IPRate == 0 {
		c.IPRate = DefaultIPRate
	}
	if c.IPBurst == 0 {
		c.IPBurst = DefaultIPBurst
	}
	if c.UserRate == 0 {
		c.UserRate = DefaultUserRate
	}
	if c.UserBurst == 0 {
		c.UserBurst = DefaultUserBurst
	}
	if c.StreamsPerUser == 0 {
		c.StreamsPerUser = DefaultStreamsPerUser
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// Deps are the gateway's collaborators.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Verifier checks bearer tokens on the API and the tokens obtained at login.
	// Required.
	Verifier *auth.Verifier
	// Listener, when set, is served instead of listening on Config.HTTPAddr (so a
	// caller can learn the address before the gateway exists, e.g. to register the
	// OAuth redirect URI with an issuer). One on 127.0.0.1 gets its IPv6 loopback
	// twin on the same port, as an address the gateway listens on itself does.
	Listener net.Listener
	// JetStream, when set, keeps the storefront's sessions and logins in flight in
	// the key-value bucket SessionBucket, so a restart of the gateway logs nobody
	// out and several gateway instances share them. Nil keeps them in this process.
	JetStream jetstream.JetStream
	// Operations, when set, feed the admin pages of stuck sagas and dead letters.
	Operations *Operations
	// Telemetry, when set, receives the gateway's HTTP server spans (otelhttp, so a
	// request's trace continues into the gRPC calls it makes) and metrics, and its
	// MetricsHandler serves /metrics. Nil keeps a private Prometheus registry and
	// the global tracer provider.
	Telemetry *telemetry.Telemetry
}

// Gateway is an HTTP server ready to serve: its listener is open from New on.
type Gateway struct {
	cfg      Config
	logger   *slog.Logger
	verifier *auth.Verifier
	lis      net.Listener
	// lis6 is the IPv6 loopback twin of a lis on 127.0.0.1, so that
	// http://[::1]:port and a "localhost" that resolves to ::1 reach the shop too.
	lis6     net.Listener
	handler  http.Handler
	ups      *upstreams
	sessions *sessionStore
	ops      *Operations
	login    *oidcLogin
	limits   *limiters
	metrics  *httpMetrics
	pages    *pages
	public   string
	// stopping is closed when Run begins shutting down, ending event streams.
	stopping chan struct{}

	runOnce sync.Once
}

// New dials the upstreams (lazily: nothing connects until the first call), creates
// the sessions' bucket when deps.JetStream is set, builds the routes and listens on
// cfg.HTTPAddr unless deps.Listener is set. It returns an error for an invalid cfg, a
// nil Verifier, a malformed upstream address, a bucket it cannot create before ctx
// ends, or an address it cannot listen on.
func New(ctx context.Context, cfg Config, deps Deps) (_ *Gateway, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if deps.Verifier == nil {
		return nil, errors.New("gateway: deps: Verifier is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "gateway")

	g := &Gateway{cfg: cfg, logger: logger, verifier: deps.Verifier, ops: deps.Operations, stopping: make(chan struct{})}
	var tp trace.TracerProvider = otel.GetTracerProvider()
	if deps.Telemetry != nil {
		tp = deps.Telemetry.TracerProvider()
	}
	g.ups, err = dialUpstreams(cfg, logger, tp)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	defer func() {
		if err != nil {
			g.ups.close()
		}
	}()

	g.lis = deps.Listener
	if g.lis == nil {
		if g.lis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("gateway: listen: %w", err)
		}
	}
	g.lis6 = loopback6(g.lis, logger)
	g.public = strings.TrimSuffix(cfg.PublicURL, "/")
	if g.public == "" {
		g.public = "http://" + g.lis.Addr().String()
	}

	g.metrics, err = newHTTPMetrics(deps.Telemetry)
	if err != nil {
		g.closeListeners()
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	var backend sessionBackend = newMemoryBackend(cfg.SessionTTL)
	if deps.JetStream != nil {
		if backend, err = newKVBackend(ctx, deps.JetStream, cfg.SessionTTL, max(cfg.SessionReplicas, 1)); err != nil {
			g.closeListeners()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	g.sessions = newSessionStore(cfg.SessionTTL, backend, logger)
	g.limits = newLimiters(cfg)
	if cfg.OIDCIssuer != "" {
		g.login = newOIDCLogin(cfg, g.public+"/auth/callback", deps.Verifier)
	}
	g.pages, err = newPages()
	if err != nil {
		g.closeListeners()
		return nil, fmt.Errorf("gateway: templates: %w", err)
	}
	api, err := g.apiHandler()
	if err != nil {
		g.closeListeners()
		return nil, fmt.Errorf("gateway: api: %w", err)
	}
	g.handler = otelhttp.NewHandler(g.routes(api), "gateway",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(g.metrics.provider),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + routeClass(r.URL.Path)
		}),
	)
	return g, nil
}

// loopback6 listens on the IPv6 loopback at lis's port when lis is on 127.0.0.1; it
// returns nil otherwise, or when that fails (a machine without IPv6, the port taken
// there), which is logged: the shop still answers on IPv4.
func loopback6(lis net.Listener, logger *slog.Logger) net.Listener {
	addr, ok := lis.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(addr.Port)))
	if err != nil {
		logger.Info("gateway not listening on the IPv6 loopback", "port", addr.Port, "error", err)
		return nil
	}
	return l
}

// closeListeners closes what New opened, when New fails.
func (g *Gateway) closeListeners() {
	g.lis.Close()
	if g.lis6 != nil {
		g.lis6.Close()
	}
}

// Addr returns the address the gateway listens on.
func (g *Gateway) Addr() net.Addr { return g.lis.Addr() }

// URL returns the public URL of the storefront.
func (g *Gateway) URL() string { return g.public }

// Handler returns the gateway's complete HTTP handler (for tests and embedding).
func (g *Gateway) Handler() http.Handler { return g.handler }

// Run serves until ctx is done, then lets in-flight requests finish (bounded by the
// shutdown timeout), closes the upstream connections and returns nil. It returns the
// server's error if serving fails, and an error if called more than once.
func (g *Gateway) Run(ctx context.Context) error {
	err := errors.New("gateway: Run called twice")
	g.runOnce.Do(func() {
		srv := &http.Server{
			Handler:           g.handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		errc := make(chan error, 2)
		serving := 1
		go func() { errc <- srv.Serve(g.lis) }()
		if g.lis6 != nil {
			serving++
			go func() { errc <- srv.Serve(g.lis6) }()
		}
		g.logger.InfoContext(ctx, "gateway serving", "addr", g.Addr().String(), "url", g.public)
		select {
		case err = <-errc:
			// One listener failed: stop serving on the other too.
			srv.Close()
			for range serving - 1 {
				<-errc
			}
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
			// Live order pages hold server-sent event streams open; they watch the
			// server's shutdown through their request contexts.
			close(g.stopping)
			err = srv.Shutdown(sctx)
			cancel()
			if err != nil {
				srv.Close()
			}
			for range serving {
				<-errc
			}
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		g.ups.close()
		g.logger.InfoContext(ctx, "gateway stopped")
	})
	return err
}
