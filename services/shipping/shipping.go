// Package shipping is the shipping service: it quotes deliveries over gRPC and, as a
// participant of the order saga, books and cancels parcels on commands from NATS
// JetStream, answering each with one reply event. Shipments are kept in SQL.
package shipping

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

	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/catalogclient"
	"github.com/eventshop/eventshop/services/shipping/sqlstore"
	grpctransport "github.com/eventshop/eventshop/services/shipping/transport/grpc"
)

// Defaults of Config.
const (
	DefaultGRPCAddr    = "127.0.0.1:9406"
	DefaultCatalogAddr = "127.0.0.1:9401"
	// DefaultRetention outlives the EVENTS stream and any saga retry.
	DefaultRetention = 14 * 24 * time.Hour
	DefaultDBDSN     = "data/shipping.db"
)

// PublicMethods are callable without a token: quoting a delivery before login.
const PublicMethods = "/eventshop.shipping.v1.ShippingService/GetQuote"

// ConsumerName is the durable consumer of the shipping commands. Renaming it is a
// deliberate replay of every unacknowledged command.
const ConsumerName = "shipping-commands"

// Config configures the shipping service.
type Config struct {
	// GRPCAddr is the listen address; ":0" picks a free port (see Service.Addr).
	GRPCAddr string
	// DBDSN names the SQL database (sqldb.Open): a SQLite path or a postgres:// URL.
	DBDSN string
	// CatalogAddr is the catalog's gRPC address, asked for product weights.
	CatalogAddr string
	// FailRate and Latency are a test and chaos knob: the share of new CreateShipment
	// commands answered ShipmentFailed, and a delay added to every command.
	FailRate float64
	Latency  time.Duration
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
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog gRPC address (product weights)")
	fs.Float64Var(&c.FailRate, "fail-rate", 0, "chaos knob: share (0..1) of CreateShipment commands that fail")
	fs.DurationVar(&c.Latency, "latency", 0, "chaos knob: delay added to every shipping command")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "commands handled at once (0: messaging default)")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 0, "attempts per command before dead-lettering (0: messaging default)")
	fs.DurationVar(&c.Retention, "retention", DefaultRetention, "how long processed command ids and their replies are kept")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", grpcserver.DefaultDrainTimeout, "how long in-flight RPCs may finish at shutdown")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replicas of each JetStream stream declared (3 on a NATS cluster)")
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
	if c.FailRate < 0 || c.FailRate > 1 {
		errs = append(errs, fmt.Errorf("fail-rate %v is outside 0..1", c.FailRate))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("retention must not be negative"))
	}
	if c.Latency < 0 || c.DrainTimeout < 0 {
		errs = append(errs, errors.New("latency and drain-timeout must not be negative"))
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
	// Verifier authenticates callers of GetShipment; nil leaves the server open.
	Verifier *auth.Verifier
	// NATS is the connection commands arrive on and replies leave by. Required.
	NATS *nats.Conn
	// DB, when set, is used instead of opening Config.DBDSN; the caller closes it.
	DB *sqldb.DB
	// CreateHook, when set, is asked about every new CreateShipment; a non-nil error
	// fails it with that reason. It is for fault tests.
	CreateHook func(ctx context.Context, cmd *shippingv1.CreateShipment) error
}

// Service is a shipping service ready to run: its listener is open from New on.
type Service struct {
	cfg      Config
	store    *sqlstore.Store
	logger   *slog.Logger
	server   *grpcserver.Server
	lis      net.Listener
	app      *app.Handlers
	consumer *messaging.Consumer
	closers  []func() error

	runOnce sync.Once
}

// New opens and migrates the database, connects to the catalog, declares the streams
// and the command consumer, and listens on cfg.GRPCAddr. It returns an error for an
// invalid cfg, a missing NATS connection, or whatever of these fails.
func New(cfg Config, deps Deps) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shipping: config: %w", err)
	}
	if deps.NATS == nil {
		return nil, errors.New("shipping: Deps.NATS is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "shipping")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	s := &Service{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	db := deps.DB
	if db == nil {
		if db, err = openDB(ctx, cfg.DBDSN); err != nil {
			return nil, fmt.Errorf("shipping: %w", err)
		}
		s.closers = append(s.closers, db.Close)
	}
	store, err := sqlstore.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("shipping: %w", err)
	}
	s.store = store

	cc, err := resilience.Dial(cfg.CatalogAddr,
		resilience.WithName("catalog"),
		resilience.WithIdempotentMethods("/eventshop.catalog.v1.CatalogService/"),
		resilience.WithDialOptions(grpc.WithPerRPCCredentials(auth.ForwardCredentials())))
	if err != nil {
		return nil, fmt.Errorf("shipping: %w", err)
	}
	s.closers = append(s.closers, cc.Close)

	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("shipping: jetstream: %w", err)
	}
	if err := messaging.DeclareStreams(ctx, js, messaging.StreamsConfig{Replicas: cfg.StreamReplicas}); err != nil {
		return nil, fmt.Errorf("shipping: %w", err)
	}
	bus := messaging.New(js, "shipping")
	s.app = app.New(store, catalogclient.New(cc), bus,
		app.Faults{FailRate: cfg.FailRate, Latency: cfg.Latency, Hook: deps.CreateHook}, logger)
	s.consumer, err = bus.NewConsumer(ctx, messaging.ConsumerConfig{
		Durable:     ConsumerName,
		Subjects:    []string{"cmd.shipping.>"},
		Concurrency: cfg.Concurrency,
		MaxDeliver:  cfg.MaxDeliver,
		Backoff:     cfg.Backoff,
		Logger:      logger,
	},
		messaging.Handle(s.app.CreateShipment),
		messaging.Handle(s.app.CancelShipment),
	)
	if err != nil {
		return nil, fmt.Errorf("shipping: %w", err)
	}

	s.server = grpcserver.New(
		grpcserver.WithLogger(logger),
		grpcserver.WithDrainTimeout(cfg.DrainTimeout),
		grpcserver.WithVerifier(deps.Verifier, auth.WithPublicMethods(PublicMethods), auth.WithLogger(logger)),
	)
	shippingv1.RegisterShippingServiceServer(s.server.GRPC(), grpctransport.NewServer(s.app, logger))
	if s.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("shipping: listen: %w", err)
	}
	return s, nil
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

// SetFaults replaces the injected faults at run time (a test and chaos knob).
func (s *Service) SetFaults(f app.Faults) { s.app.SetFaults(f) }

// Run serves gRPC and handles commands until ctx is done, then drains both: in-flight
// RPCs finish (bounded by the drain timeout) and unfinished commands go back to the
// stream. It returns nil after a clean stop, the first error of the server or the
// consumer otherwise, and an error if called more than once.
func (s *Service) Run(ctx context.Context) error {
	err := errors.New("shipping: Run called twice")
	s.runOnce.Do(func() {
		defer s.close()
		s.server.Health().SetServingStatus(shippingv1.ShippingService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		s.logger.InfoContext(ctx, "shipping serving", "addr", s.Addr().String())
		err = service.Together(ctx, []func(context.Context) error{
			func(ctx context.Context) error { return s.server.Serve(ctx, s.lis) },
			s.consumer.Run,
		}, s.prune)
		s.logger.InfoContext(ctx, "shipping stopped")
	})
	return err
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
