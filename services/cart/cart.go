// Package cart is the shopping cart service: one cart per verified user, kept in a
// NATS JetStream key-value bucket, checked and priced against the catalog over gRPC.
package cart

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/cart/app"
	"github.com/eventshop/eventshop/services/cart/catalogclient"
	"github.com/eventshop/eventshop/services/cart/domain"
	"github.com/eventshop/eventshop/services/cart/kvstore"
	grpctransport "github.com/eventshop/eventshop/services/cart/transport/grpc"
)

// Defaults of Config, also the flag defaults.
const (
	DefaultGRPCAddr       = "127.0.0.1:9402"
	DefaultCatalogAddr    = "127.0.0.1:9401"
	DefaultCartTTL        = 7 * 24 * time.Hour
	DefaultMaxLines       = 50
	DefaultMaxQuantity    = 100
	DefaultCatalogTimeout = 2 * time.Second
)

// maxQuantityLimit is the API's own bound on a line (cart.proto: quantity lte 100).
const maxQuantityLimit = 100

// catalogService is the gRPC service prefix of the catalog, all of it read-only and
// therefore safe to retry.
const catalogService = "/eventshop.catalog.v1.CatalogService/"

// Config configures the cart service.
type Config struct {
	// GRPCAddr is the listen address; ":0" picks a free port (see Service.Addr).
	GRPCAddr string
	// CatalogAddr is the catalog service's gRPC address.
	CatalogAddr string
	// CartTTL is how long a cart lives after its last change (the bucket's TTL).
	CartTTL time.Duration
	// MaxLines is the most distinct products in one cart.
	MaxLines int
	// MaxQuantity is the most units of one product in one cart, at most 100.
	MaxQuantity int
	// CatalogTimeout bounds each catalog call.
	CatalogTimeout time.Duration
	// DrainTimeout bounds the graceful stop; zero means grpcserver.DefaultDrainTimeout.
	DrainTimeout time.Duration
	// StreamReplicas is the replica count of the carts bucket: 1 on a single
	// server, 3 on a cluster. Zero means 1.
	StreamReplicas int
}

// RegisterFlags defines the cart's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog service gRPC address")
	fs.DurationVar(&c.CartTTL, "cart-ttl", DefaultCartTTL, "how long an untouched cart is kept")
	fs.IntVar(&c.MaxLines, "max-lines", DefaultMaxLines, "most distinct products in one cart")
	fs.IntVar(&c.MaxQuantity, "max-quantity", DefaultMaxQuantity, "most units of one product in one cart (1-100)")
	fs.DurationVar(&c.CatalogTimeout, "catalog-timeout", DefaultCatalogTimeout, "deadline of each catalog call")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", grpcserver.DefaultDrainTimeout, "how long in-flight RPCs may finish at shutdown")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replicas of the carts bucket (3 on a NATS cluster)")
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("grpc-addr is empty"))
	}
	if c.CatalogAddr == "" {
		errs = append(errs, errors.New("catalog-addr is empty"))
	}
	if c.CartTTL < 0 {
		errs = append(errs, fmt.Errorf("cart-ttl %v is negative", c.CartTTL))
	}
	if c.MaxLines <= 0 {
		errs = append(errs, fmt.Errorf("max-lines %d is not positive", c.MaxLines))
	}
	if c.MaxQuantity <= 0 || c.MaxQuantity > maxQuantityLimit {
		errs = append(errs, fmt.Errorf("max-quantity %d is not between 1 and %d", c.MaxQuantity, maxQuantityLimit))
	}
	if c.CatalogTimeout < 0 {
		errs = append(errs, fmt.Errorf("catalog-timeout %v is negative", c.CatalogTimeout))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %v is negative", c.DrainTimeout))
	}
	if c.StreamReplicas < 0 {
		errs = append(errs, fmt.Errorf("stream-replicas %d is negative", c.StreamReplicas))
	}
	return errors.Join(errs...)
}

// Deps are the cart's collaborators.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Verifier checks the bearer token of every call; required, since a cart belongs
	// to the verified caller.
	Verifier *auth.Verifier
	// NATS is the connection whose JetStream holds the carts bucket; required.
	NATS *nats.Conn
	// CatalogDialOptions are extra resilience options for the catalog connection.
	CatalogDialOptions []resilience.Option
}

// Service is a cart service ready to serve: its listener is open from New on.
type Service struct {
	logger  *slog.Logger
	server  *grpcserver.Server
	lis     net.Listener
	catalog *grpc.ClientConn
	started atomic.Bool
}

// New validates cfg and deps, creates the carts bucket (idempotently), prepares the
// catalog connection (lazily: the catalog may start later) and listens on
// cfg.GRPCAddr. It returns an error for invalid config, a missing verifier or NATS
// connection, a bucket that cannot be created before ctx ends (or within 30 s), or an
// address it cannot listen on.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cart: config: %w", err)
	}
	switch {
	case deps.Verifier == nil:
		return nil, errors.New("cart: a token verifier is required: carts belong to verified users")
	case deps.NATS == nil:
		return nil, errors.New("cart: a NATS connection is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "cart")

	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("cart: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := kvstore.New(ctx, js, cfg.CartTTL, kvstore.WithReplicas(cfg.StreamReplicas))
	if err != nil {
		return nil, fmt.Errorf("cart: %w", err)
	}

	dialOpts := append([]resilience.Option{
		resilience.WithName("catalog"),
		resilience.WithTimeout(cfg.CatalogTimeout),
		resilience.WithIdempotentMethods(catalogService),
		resilience.WithLogger(logger),
	}, deps.CatalogDialOptions...)
	conn, err := resilience.Dial(cfg.CatalogAddr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("cart: catalog: %w", err)
	}

	carts := app.NewCarts(store, catalogclient.New(conn),
		domain.Limits{MaxLines: cfg.MaxLines, MaxQuantity: int32(cfg.MaxQuantity)}, logger)
	srv := grpcserver.New(
		grpcserver.WithLogger(logger),
		grpcserver.WithDrainTimeout(cfg.DrainTimeout),
		grpcserver.WithVerifier(deps.Verifier, auth.WithAccess(Access), auth.WithLogger(logger)),
	)
	cartv1.RegisterCartServiceServer(srv.GRPC(), grpctransport.NewServer(carts, logger))

	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cart: listen: %w", err)
	}
	return &Service{logger: logger, server: srv, lis: lis, catalog: conn}, nil
}

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx is done, then drains in-flight RPCs (bounded by the drain
// timeout), closes the catalog connection and returns nil. It returns the server's
// error if serving fails, and an error if called more than once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("cart: Run called twice")
	}
	defer s.catalog.Close()
	s.server.Health().SetServingStatus(cartv1.CartService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.logger.InfoContext(ctx, "cart serving", "addr", s.Addr().String())
	err := s.server.Serve(ctx, s.lis)
	s.logger.InfoContext(ctx, "cart stopped", "error", err)
	return err
}

// Access: every cart method needs the cart scope (and acts on the caller's own cart).
var Access = auth.Access{
	cartv1.CartService_GetCart_FullMethodName:            {Scope: auth.ScopeCart},
	cartv1.CartService_AddItem_FullMethodName:            {Scope: auth.ScopeCart},
	cartv1.CartService_UpdateItemQuantity_FullMethodName: {Scope: auth.ScopeCart},
	cartv1.CartService_RemoveItem_FullMethodName:         {Scope: auth.ScopeCart},
	cartv1.CartService_EmptyCart_FullMethodName:          {Scope: auth.ScopeCart},
}
