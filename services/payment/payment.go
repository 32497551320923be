// Package payment is the payment service: as a participant of the order saga it
// authorizes, captures, voids and refunds card payments on commands from NATS
// JetStream, answering each with one reply event, and it answers payment queries over
// gRPC. Payments are kept in SQL; the card network is a Provider.
package payment

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
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/payment/app"
	"github.com/eventshop/eventshop/services/payment/provider"
	"github.com/eventshop/eventshop/services/payment/sqlstore"
	grpctransport "github.com/eventshop/eventshop/services/payment/transport/grpc"
)

// Defaults of Config.
const (
	DefaultGRPCAddr = "127.0.0.1:9404"
	// DefaultRetention outlives the EVENTS stream and any saga retry.
	DefaultRetention = 14 * 24 * time.Hour
	DefaultDBDSN     = "data/payment.db"
)

// ConsumerName is the durable consumer of the payment commands. Renaming it is a
// deliberate replay of every unacknowledged command.
const ConsumerName = "payment-commands"

// Config configures the payment service.
type Config struct {
	// GRPCAddr is the listen address; ":0" picks a free port (see Service.Addr).
	GRPCAddr string
	// DBDSN names the SQL database (sqldb.Open): a SQLite path or a postgres:// URL.
	DBDSN string
	// ProviderLatency, ProviderFailRate and SlowDelay tune the simulated card network
	// (used unless Deps.Provider is set): a delay on every call, the share of calls
	// failing transiently, and how long tok_slow takes. Test and chaos knobs.
	ProviderLatency  time.Duration
	ProviderFailRate float64
	SlowDelay        time.Duration
	// Concurrency bounds the commands handled at once. Zero takes the messaging default.
	Concurrency int
	// MaxDeliver and Backoff tune command redelivery (a transient provider failure is
	// retried this way); zero values take the messaging defaults.
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
	fs.DurationVar(&c.ProviderLatency, "provider-latency", 0, "chaos knob: delay added to every call to the simulated card network")
	fs.Float64Var(&c.ProviderFailRate, "provider-fail-rate", 0, "chaos knob: share (0..1) of card network calls failing transiently")
	fs.DurationVar(&c.SlowDelay, "slow-delay", provider.DefaultSlowDelay, "how long the tok_slow test card takes")
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
	if c.ProviderFailRate < 0 || c.ProviderFailRate > 1 {
		errs = append(errs, fmt.Errorf("provider-fail-rate %v is outside 0..1", c.ProviderFailRate))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("retention must not be negative"))
	}
	if c.ProviderLatency < 0 || c.SlowDelay < 0 || c.DrainTimeout < 0 {
		errs = append(errs, errors.New("provider-latency, slow-delay and drain-timeout must not be negative"))
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
	// Verifier authenticates callers of the queries; nil leaves the server open.
	Verifier *auth.Verifier
	// NATS is the connection commands arrive on and replies leave by. Required.
	NATS *nats.Conn
	// DB, when set, is used instead of opening Config.DBDSN; the caller closes it.
	DB *sqldb.DB
	// Provider replaces the simulated card network.
	Provider provider.Provider
}

// Service is a payment service ready to run: its listener is open from New on.
type Service struct {
	cfg      Config
	store    *sqlstore.Store
	logger   *slog.Logger
	server   *grpcserver.Server
	lis      net.Listener
	consumer *messaging.Consumer
	closers  []func() error

	runOnce sync.Once
}

// New opens and migrates the database, declares the streams and the command
// consumer, and listens on cfg.GRPCAddr. It returns an error for an invalid cfg, a
// missing NATS connection, or whatever of these fails.
func New(cfg Config, deps Deps) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("payment: config: %w", err)
	}
	if deps.NATS == nil {
		return nil, errors.New("payment: Deps.NATS is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "payment")
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
			return nil, fmt.Errorf("payment: %w", err)
		}
		s.closers = append(s.closers, db.Close)
	}
	store, err := sqlstore.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}
	s.store = store
	prov := deps.Provider
	if prov == nil {
		prov = &provider.Simulated{Latency: cfg.ProviderLatency, FailRate: cfg.ProviderFailRate, SlowDelay: cfg.SlowDelay}
	}

	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("payment: jetstream: %w", err)
	}
	if err := messaging.DeclareStreams(ctx, js, messaging.StreamsConfig{Replicas: cfg.StreamReplicas}); err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}
	bus := messaging.New(js, "payment")
	h := app.New(store, prov, bus, logger)
	s.consumer, err = bus.NewConsumer(ctx, messaging.ConsumerConfig{
		Durable:     ConsumerName,
		Subjects:    []string{"cmd.payment.>"},
		Concurrency: cfg.Concurrency,
		MaxDeliver:  cfg.MaxDeliver,
		Backoff:     cfg.Backoff,
		Logger:      logger,
	},
		messaging.Handle(h.AuthorizePayment),
		messaging.Handle(h.CapturePayment),
		messaging.Handle(h.VoidAuthorization),
		messaging.Handle(h.RefundPayment),
	)
	if err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}

	s.server = grpcserver.New(
		grpcserver.WithLogger(logger),
		grpcserver.WithDrainTimeout(cfg.DrainTimeout),
		grpcserver.WithVerifier(deps.Verifier, auth.WithLogger(logger)),
	)
	paymentv1.RegisterPaymentServiceServer(s.server.GRPC(), grpctransport.NewServer(h, logger))
	if s.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("payment: listen: %w", err)
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

// Run serves gRPC and handles commands until ctx is done, then drains both: in-flight
// RPCs finish (bounded by the drain timeout) and unfinished commands go back to the
// stream. It returns nil after a clean stop, the first error of the server or the
// consumer otherwise, and an error if called more than once.
func (s *Service) Run(ctx context.Context) error {
	err := errors.New("payment: Run called twice")
	s.runOnce.Do(func() {
		defer s.close()
		s.server.Health().SetServingStatus(paymentv1.PaymentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		s.logger.InfoContext(ctx, "payment serving", "addr", s.Addr().String())
		err = service.Together(ctx, []func(context.Context) error{
			func(ctx context.Context) error { return s.server.Serve(ctx, s.lis) },
			s.consumer.Run,
		}, s.prune)
		s.logger.InfoContext(ctx, "payment stopped")
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
