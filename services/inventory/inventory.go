// Package inventory is the inventory service: stock per product (available, reserved,
// sold), seeded from the catalog, and, as a participant of the order saga, all-or-
// nothing reservations that are committed, released or expire. Stock is kept in SQL
// with conditional updates, so it is never oversold.
package inventory

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/inventory/app"
	"github.com/eventshop/eventshop/services/inventory/catalogclient"
	"github.com/eventshop/eventshop/services/inventory/domain"
	"github.com/eventshop/eventshop/services/inventory/sqlstore"
	grpctransport "github.com/eventshop/eventshop/services/inventory/transport/grpc"
)

// Defaults of Config.
const (
	DefaultGRPCAddr       = "127.0.0.1:9405"
	DefaultCatalogAddr    = "127.0.0.1:9401"
	DefaultDBDSN          = "data/inventory.db"
	DefaultSeedStock      = 100
	DefaultReservationTTL = 15 * time.Minute
	DefaultSweepInterval  = 5 * time.Second
	// DefaultRetention outlives the EVENTS stream and any saga retry.
	DefaultRetention = 14 * 24 * time.Hour
)

// PublicMethods are callable without a token: the storefront shows stock levels.
const PublicMethods = "/eventshop.inventory.v1.InventoryService/GetStock"

// ConsumerName is the durable consumer of the inventory commands. Renaming it is a
// deliberate replay of every unacknowledged command.
const ConsumerName = "inventory-commands"

// Config configures the inventory service.
type Config struct {
	// GRPCAddr is the listen address; ":0" picks a free port (see Service.Addr).
	GRPCAddr string
	// DBDSN names the SQL database (sqldb.Open): a SQLite path or a postgres:// URL.
	DBDSN string
	// CatalogAddr is the catalog's gRPC address, listed at start to seed stock.
	CatalogAddr string
	// SeedStock is the units given at start to every catalog product without stock;
	// existing stock is never overwritten. Zero or less seeds nothing (and does not
	// call the catalog).
	SeedStock int64
	// ReservationTTL is how long a reservation is held if never committed.
	ReservationTTL time.Duration
	// SweepInterval is how often expired reservations are looked for.
	SweepInterval time.Duration
	// Concurrency bounds the commands handled at once. Zero takes the messaging default.
	Concurrency int
	// MaxDeliver and Backoff tune command redelivery; zero values take the messaging
	// defaults.
	MaxDeliver int
	Backoff    []time.Duration
	// Retention is how long processed command ids and their replies are kept; a
	// command resent later is handled as new. Zero means DefaultRetention.
	Retention time.Duration
	// DrainTimeout bounds the graceful stop; zero means grpcserver.DefaultDrainTimeout.
	DrainTimeout time.Duration
	// StreamReplicas is the replica count of the JetStream streams the service
	// declares: 1 on a single server, 3 on a cluster. Zero means 1.
	StreamReplicas int
}

// RegisterFlags defines the service's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&c.DBDSN, "db-dsn", DefaultDBDSN, "SQL database: SQLite file path or postgres:// URL")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog gRPC address (products to seed)")
	fs.Int64Var(&c.SeedStock, "seed-stock", DefaultSeedStock, "units given at start to every catalog product without stock (0: no seeding)")
	fs.DurationVar(&c.ReservationTTL, "reservation-ttl", DefaultReservationTTL, "how long an uncommitted reservation is held")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", DefaultSweepInterval, "how often expired reservations are released")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "commands handled at once (0: messaging default)")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 0, "attempts per command before dead-lettering (0: messaging default)")
	fs.DurationVar(&c.Retention, "retention", DefaultRetention, "how long processed command ids and their replies are kept")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", grpcserver.DefaultDrainTimeout, "how long in-flight RPCs may finish at shutdown")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replicas of each JetStream stream declared (3 on a NATS cluster)")
}

func (c Config) withDefaults() Config {
	if c.ReservationTTL == 0 {
		c.ReservationTTL = DefaultReservationTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("grpc-addr is empty"))
	}
	if c.SeedStock > 0 && c.CatalogAddr == "" {
		errs = append(errs, errors.New("catalog-addr is empty but seed-stock is set"))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("retention must not be negative"))
	}
	if c.ReservationTTL < 0 || c.SweepInterval < 0 || c.DrainTimeout < 0 {
		errs = append(errs, errors.New("reservation-ttl, sweep-interval and drain-timeout must not be negative"))
	}
	if c.StreamReplicas < 0 {
		errs = append(errs, fmt.Errorf("stream-replicas %d is negative", c.StreamReplicas))
	}
	return errors.Join(errs...)
}

// Deps are the service's collaborators.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Verifier authenticates callers; SetStock and ListStock need the admin role, so
	// without a verifier they are always refused.
	Verifier *auth.Verifier
	// NATS is the connection commands arrive on and replies leave by. Required.
	NATS *nats.Conn
	// DB, when set, is used instead of opening Config.DBDSN; the caller closes it.
	DB *sqldb.DB
}

// Service is an inventory service ready to run: its listener is open from New on.
type Service struct {
	cfg      Config
	logger   *slog.Logger
	server   *grpcserver.Server
	lis      net.Listener
	app      *app.Handlers
	store    *sqlstore.Store
	consumer *messaging.Consumer
	closers  []func() error

	runOnce sync.Once
}

// New opens and migrates the database, seeds stock for the catalog's products,
// declares the streams and the command consumer, and listens on cfg.GRPCAddr. It
// returns an error for an invalid cfg, a missing NATS connection, or whatever of these
// fails (the catalog unreachable while seeding included).
func New(cfg Config, deps Deps) (_ *Service, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inventory: config: %w", err)
	}
	if deps.NATS == nil {
		return nil, errors.New("inventory: Deps.NATS is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "inventory")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s := &Service{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	db := deps.DB
	if db == nil {
		if db, err = openDB(ctx, cfg.DBDSN); err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		s.closers = append(s.closers, db.Close)
	}
	if s.store, err = sqlstore.Open(ctx, db); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if err := s.registerMetrics(); err != nil {
		return nil, fmt.Errorf("inventory: metrics: %w", err)
	}
	if cfg.SeedStock > 0 {
		if err := s.seed(ctx, cfg); err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
	}

	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("inventory: jetstream: %w", err)
	}
	if err := messaging.DeclareStreams(ctx, js, messaging.StreamsConfig{Replicas: cfg.StreamReplicas}); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	bus := messaging.New(js, "inventory")
	s.app = app.New(s.store, bus, cfg.ReservationTTL, logger)
	s.consumer, err = bus.NewConsumer(ctx, messaging.ConsumerConfig{
		Durable:     ConsumerName,
		Subjects:    []string{"cmd.inventory.>"},
		Concurrency: cfg.Concurrency,
		MaxDeliver:  cfg.MaxDeliver,
		Backoff:     cfg.Backoff,
		Logger:      logger,
	},
		messaging.Handle(s.app.ReserveInventory),
		messaging.Handle(s.app.CommitReservation),
		messaging.Handle(s.app.ReleaseInventory),
	)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}

	s.server = grpcserver.New(
		grpcserver.WithLogger(logger),
		grpcserver.WithDrainTimeout(cfg.DrainTimeout),
		grpcserver.WithVerifier(deps.Verifier, auth.WithPublicMethods(PublicMethods), auth.WithLogger(logger)),
	)
	inventoryv1.RegisterInventoryServiceServer(s.server.GRPC(), grpctransport.NewServer(s.app, logger))
	if s.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("inventory: listen: %w", err)
	}
	return s, nil
}

func (s *Service) seed(ctx context.Context, cfg Config) error {
	cc, err := resilience.Dial(cfg.CatalogAddr,
		resilience.WithName("catalog"),
		resilience.WithIdempotentMethods("/eventshop.catalog.v1.CatalogService/"),
		resilience.WithDialOptions(grpc.WithPerRPCCredentials(auth.ForwardCredentials())))
	if err != nil {
		return err
	}
	defer cc.Close()
	ids, err := catalogclient.New(cc).ProductIDs(ctx)
	if err != nil {
		return fmt.Errorf("seed stock: %w", err)
	}
	n, err := s.store.Seed(ctx, ids, cfg.SeedStock)
	if err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "stock seeded", "products", len(ids), "created", n, "units", cfg.SeedStock)
	return nil
}

// openDB opens dsn, creating the directory of a SQLite file first.
func openDB(ctx context.Context, dsn string) (*sqldb.DB, error) {
	if !strings.Contains(dsn, "://") && !strings.HasPrefix(dsn, "file:") && !strings.HasPrefix(dsn, ":memory:") {
		path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite:"), "?")
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
	}
	return sqldb.Open(ctx, dsn)
}

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// StockLevels returns every product's stock including TotalStocked (seed plus
// restocks), for invariant audits: Available + Reserved + Sold = TotalStocked. It
// returns the database error.
func (s *Service) StockLevels(ctx context.Context) ([]domain.Stock, error) {
	var all []domain.Stock
	after := ""
	for {
		page, err := s.store.ListStock(ctx, after, 500)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all, nil
		}
		after = page[len(page)-1].ProductID
	}
}

// ExpireNow releases the reservations already past their TTL without waiting for the
// sweeper, and returns how many it released. It returns the store's error.
func (s *Service) ExpireNow(ctx context.Context) (int, error) { return s.app.ExpireDue(ctx) }

// Run serves gRPC, handles commands and sweeps expired reservations until ctx is
// done, then drains: in-flight RPCs finish (bounded by the drain timeout) and
// unfinished commands go back to the stream. It returns nil after a clean stop, the
// first error of the server or the consumer otherwise, and an error if called twice.
func (s *Service) Run(ctx context.Context) error {
	err := errors.New("inventory: Run called twice")
	s.runOnce.Do(func() {
		defer s.close()
		s.server.Health().SetServingStatus(inventoryv1.InventoryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		s.logger.InfoContext(ctx, "inventory serving", "addr", s.Addr().String())
		err = service.Together(ctx, []func(context.Context) error{
			func(ctx context.Context) error { return s.server.Serve(ctx, s.lis) },
			s.consumer.Run,
		}, s.sweep, s.prune)
		s.logger.InfoContext(ctx, "inventory stopped")
	})
	return err
}

// sweep releases expired reservations every SweepInterval until ctx is done.
func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.app.ExpireDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "reservation sweep failed", "error", err)
		}
		if n > 0 {
			s.logger.InfoContext(ctx, "reservations expired", "count", n)
		}
	}
}

// prune forgets processed commands older than the retention, at start and hourly,
// until ctx is done.
func (s *Service) prune(ctx context.Context) {
	messaging.PruneEvery(ctx, time.Hour, s.cfg.Retention, s.logger, s.store.Prune)
}

func (s *Service) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
}
