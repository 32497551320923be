// Package catalog is the product catalog service: a read-only, in-memory catalog
// loaded at start-up and served over gRPC. All its RPCs are public.
package catalog

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/services/catalog/domain"
	"github.com/eventshop/eventshop/services/catalog/productfile"
	grpctransport "github.com/eventshop/eventshop/services/catalog/transport/grpc"
)

// DefaultGRPCAddr is where the catalog listens unless configured otherwise.
const DefaultGRPCAddr = "127.0.0.1:9401"

// Access: the whole catalog is public; a token presented is still verified.
var Access = auth.Access{
	catalogv1.CatalogService_ListProducts_FullMethodName:   {Public: true},
	catalogv1.CatalogService_GetProduct_FullMethodName:     {Public: true},
	catalogv1.CatalogService_SearchProducts_FullMethodName: {Public: true},
	catalogv1.CatalogService_GetProducts_FullMethodName:    {Public: true},
	catalogv1.CatalogService_ListCategories_FullMethodName: {Public: true},
}

// Config configures the catalog service.
type Config struct {
	// GRPCAddr is the listen address; ":0" picks a free port (see Service.Addr).
	GRPCAddr string
	// ProductsFile is a JSON product file replacing the embedded catalog when set.
	ProductsFile string
	// DrainTimeout bounds the graceful stop; zero means grpcserver.DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// RegisterFlags defines the catalog's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&c.ProductsFile, "products-file", "", "JSON product file to serve instead of the embedded catalog")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", grpcserver.DefaultDrainTimeout, "how long in-flight RPCs may finish at shutdown")
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("grpc-addr is empty"))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %v is negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// Deps are the catalog's collaborators.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Verifier, when set, verifies tokens that callers choose to send; every catalog
	// RPC is public, so it may be nil.
	Verifier *auth.Verifier
}

// Service is a catalog ready to serve: its listener is open from New on.
type Service struct {
	logger  *slog.Logger
	server  *grpcserver.Server
	lis     net.Listener
	catalog *domain.Catalog

	started atomic.Bool
}

// New loads and validates the catalog and listens on cfg.GRPCAddr. It returns an
// error for an invalid cfg, a catalog that fails to load (naming the product), or an
// address it cannot listen on. ctx bounds nothing yet (the catalog loads from a
// file); it is there so every service starts the same way.
func New(_ context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("catalog: config: %w", err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "catalog")

	var (
		cat *domain.Catalog
		err error
	)
	if cfg.ProductsFile != "" {
		cat, err = productfile.LoadCatalogFile(cfg.ProductsFile)
	} else {
		cat, err = productfile.EmbeddedCatalog()
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}

	srv := grpcserver.New(
		grpcserver.WithLogger(logger),
		grpcserver.WithDrainTimeout(cfg.DrainTimeout),
		grpcserver.WithVerifier(deps.Verifier, auth.WithAccess(Access), auth.WithLogger(logger)),
	)
	catalogv1.RegisterCatalogServiceServer(srv.GRPC(), grpctransport.NewServer(cat))

	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("catalog: listen: %w", err)
	}
	return &Service{logger: logger, server: srv, lis: lis, catalog: cat}, nil
}

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx is done, then drains in-flight RPCs (bounded by the drain
// timeout) and returns nil. It returns the server's error if serving fails, and an
// error if called more than once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("catalog: Run called twice")
	}
	s.server.Health().SetServingStatus(catalogv1.CatalogService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.logger.InfoContext(ctx, "catalog serving", "addr", s.Addr().String(), "products", s.catalog.Len())
	err := s.server.Serve(ctx, s.lis)
	s.logger.InfoContext(ctx, "catalog stopped", "error", err)
	return err
}
