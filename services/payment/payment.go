// Package payment is the payment service: as a participant of the order saga it
// authorizes, captures, voids and refunds card payments on commands from NATS
// JetStream, answering each with one reply event, and it answers payment queries over
// gRPC. Payments are kept in SQL; the card network is a Provider. The shell (consumer,
// batch transactions, replies, gRPC server) is pkg/participant's; this package only
// declares the payment decisions, schema and queries.
package payment

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/participant"
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

// ConsumerName is the durable consumer of the payment commands, named by the
// participant shell after the service. Renaming it is a deliberate replay of every
// unacknowledged command.
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
	// BatchSize is the most commands decided in one SQL transaction; zero takes
	// messaging.DefaultBatchSize, 1 commits every command alone.
	BatchSize int
	// Concurrency bounds the batches handled at once. Zero takes the messaging default.
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
	fs.IntVar(&c.BatchSize, "batch-size", 0, "most commands decided in one SQL transaction (0: messaging default)")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "batches of commands handled at once (0: messaging default)")
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
	if c.BatchSize < 0 || c.Concurrency < 0 || c.MaxDeliver < 0 {
		errs = append(errs, errors.New("batch-size, concurrency and max-deliver must not be negative"))
	}
	if c.StreamReplicas < 0 {
		errs = append(errs, fmt.Errorf("stream-replicas %d is negative", c.StreamReplicas))
	}
	return errors.Join(errs...)
}

// participant maps the config to the participant shell's.
func (c Config) participant() participant.Config {
	retention := c.Retention
	if retention == 0 {
		retention = DefaultRetention
	}
	return participant.Config{
		Name: "payment", GRPCAddr: c.GRPCAddr, DBDSN: c.DBDSN, Migrations: sqlstore.Migrations(),
		BatchSize: c.BatchSize, Concurrency: c.Concurrency, MaxDeliver: c.MaxDeliver, Backoff: c.Backoff,
		Retention: retention, DrainTimeout: c.DrainTimeout, StreamReplicas: c.StreamReplicas,
	}
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
	shell *participant.Service
}

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.shell.Addr() }

// Run serves gRPC and handles commands until ctx is done, then drains both: in-flight
// RPCs finish (bounded by the drain timeout) and unfinished commands go back to the
// stream. It returns nil after a clean stop, the first error of the server or the
// consumer otherwise, and an error if called more than once.
func (s *Service) Run(ctx context.Context) error { return s.shell.Run(ctx) }

// New opens and migrates the database, declares the streams and the command
// consumer, and listens on cfg.GRPCAddr; ctx bounds this start-up I/O. It returns an
// error for an invalid cfg, a missing NATS connection, or whatever of these fails.
func New(ctx context.Context, cfg Config, deps Deps) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("payment: config: %w", err)
	}
	p, err := participant.Open(ctx, cfg.participant(), participant.Deps{Logger: deps.Logger, Verifier: deps.Verifier, NATS: deps.NATS, DB: deps.DB})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	prov := deps.Provider
	if prov == nil {
		prov = &provider.Simulated{Latency: cfg.ProviderLatency, FailRate: cfg.ProviderFailRate, SlowDelay: cfg.SlowDelay}
	}
	h := app.New(sqlstore.New(p.DB()), prov, p.Logger())
	err = p.Start(ctx, participant.Wiring{
		Handlers: []participant.Handler{
			participant.Handle(sqlstore.TxView, h.AuthorizePayment),
			participant.Handle(sqlstore.TxView, h.CapturePayment),
			participant.Handle(sqlstore.TxView, h.VoidAuthorization),
			participant.Handle(sqlstore.TxView, h.RefundPayment),
		},
		ReplyID:    app.ReplyID,
		HealthName: paymentv1.PaymentService_ServiceDesc.ServiceName,
		Register: func(s *grpc.Server) {
			paymentv1.RegisterPaymentServiceServer(s, grpctransport.NewServer(h, p.Logger()))
		},
	})
	if err != nil {
		return nil, err
	}
	return &Service{shell: p}, nil
}
