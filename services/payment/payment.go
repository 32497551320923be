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
	DefaultDBDSN    = "data/payment.db"
	// DefaultRetention outlives the EVENTS stream and any saga retry.
	DefaultRetention = participant.DefaultRetention
)

// ConsumerName is the durable consumer of the payment commands, named by the
// participant shell after the service. Renaming it is a deliberate replay of every
// unacknowledged command.
const ConsumerName = "payment-commands"

// Config configures the payment service: the settings every participant has (listen
// address, database, batching, redelivery, retention) and the simulated card network.
type Config struct {
	participant.Settings
	// ProviderLatency, ProviderFailRate and SlowDelay tune the simulated card network
	// (used unless Deps.Provider is set): a delay on every call, the share of calls
	// failing transiently, and how long tok_slow takes. Test and chaos knobs.
	ProviderLatency  time.Duration
	ProviderFailRate float64
	SlowDelay        time.Duration
}

// RegisterFlags defines the service's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Settings.RegisterFlags(fs, DefaultGRPCAddr, DefaultDBDSN)
	fs.DurationVar(&c.ProviderLatency, "provider-latency", 0, "chaos knob: delay added to every call to the simulated card network")
	fs.Float64Var(&c.ProviderFailRate, "provider-fail-rate", 0, "chaos knob: share (0..1) of card network calls failing transiently")
	fs.DurationVar(&c.SlowDelay, "slow-delay", provider.DefaultSlowDelay, "how long the tok_slow test card takes")
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	errs := []error{c.Settings.Validate()}
	if c.ProviderFailRate < 0 || c.ProviderFailRate > 1 {
		errs = append(errs, fmt.Errorf("provider-fail-rate %v is outside 0..1", c.ProviderFailRate))
	}
	if c.ProviderLatency < 0 || c.SlowDelay < 0 {
		errs = append(errs, errors.New("provider-latency and slow-delay must not be negative"))
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
	p, err := participant.Open(ctx, participant.Config{Name: "payment", Migrations: sqlstore.Migrations(), Settings: cfg.Settings}, participant.Deps{Logger: deps.Logger, Verifier: deps.Verifier, NATS: deps.NATS, DB: deps.DB})
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
		Access: Access,
	})
	if err != nil {
		return nil, err
	}
	return &Service{shell: p}, nil
}

// Access: a payment is read with orders:read.
var Access = auth.Access{
	paymentv1.PaymentService_GetPayment_FullMethodName:        {Scope: auth.ScopeOrdersRead},
	paymentv1.PaymentService_GetPaymentByOrder_FullMethodName: {Scope: auth.ScopeOrdersRead},
}
