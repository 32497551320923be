// Package shipping is the shipping service: it quotes deliveries over gRPC and, as a
// participant of the order saga, books and cancels parcels on commands from NATS
// JetStream, answering each with one reply event. Shipments are kept in SQL; the
// carrier is a carrier.Carrier. The shell (consumer, batch transactions, replies,
// gRPC server) is pkg/participant's; this package only declares the shipping
// decisions, schema and queries.
package shipping

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

	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/carrier"
	"github.com/eventshop/eventshop/services/shipping/catalogclient"
	"github.com/eventshop/eventshop/services/shipping/sqlstore"
	grpctransport "github.com/eventshop/eventshop/services/shipping/transport/grpc"
)

// Defaults of Config.
const (
	DefaultGRPCAddr    = "127.0.0.1:9406"
	DefaultCatalogAddr = "127.0.0.1:9401"
	DefaultDBDSN       = "data/shipping.db"
	// DefaultRetention outlives the EVENTS stream and any saga retry.
	DefaultRetention = participant.DefaultRetention
)

// Access: quoting a delivery is public (before login); a shipment is read with
// orders:read.
var Access = auth.Access{
	shippingv1.ShippingService_GetQuote_FullMethodName:    {Public: true},
	shippingv1.ShippingService_GetShipment_FullMethodName: {Scope: auth.ScopeOrdersRead},
}

// ConsumerName is the durable consumer of the shipping commands, named by the
// participant shell after the service. Renaming it is a deliberate replay of every
// unacknowledged command.
const ConsumerName = "shipping-commands"

// Config configures the shipping service: the settings every participant has (listen
// address, database, batching, redelivery, retention), the catalog and the simulated
// carrier.
type Config struct {
	participant.Settings
	// CatalogAddr is the catalog's gRPC address, asked for product weights.
	CatalogAddr string
	// FailRate and Latency are a test and chaos knob of the simulated carrier (used
	// unless Deps.Carrier is set): the share of new parcels refused, answered
	// ShipmentFailed, and a delay added to every call to the carrier.
	FailRate float64
	Latency  time.Duration
}

// RegisterFlags defines the service's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Settings.RegisterFlags(fs, DefaultGRPCAddr, DefaultDBDSN)
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog gRPC address (product weights)")
	fs.Float64Var(&c.FailRate, "fail-rate", 0, "chaos knob: share (0..1) of new parcels the simulated carrier refuses")
	fs.DurationVar(&c.Latency, "latency", 0, "chaos knob: delay added to every call to the simulated carrier")
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	errs := []error{c.Settings.Validate()}
	if c.CatalogAddr == "" {
		errs = append(errs, errors.New("catalog-addr is empty"))
	}
	if c.FailRate < 0 || c.FailRate > 1 {
		errs = append(errs, fmt.Errorf("fail-rate %v is outside 0..1", c.FailRate))
	}
	if c.Latency < 0 {
		errs = append(errs, errors.New("latency must not be negative"))
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
	// Carrier replaces the simulated carrier configured by FailRate and Latency.
	Carrier carrier.Carrier
}

// Service is a shipping service ready to run: its listener is open from New on.
type Service struct {
	shell *participant.Service
}

// New opens and migrates the database, connects to the catalog, declares the streams
// and the command consumer, and listens on cfg.GRPCAddr; ctx bounds this start-up
// I/O. It returns an error for an invalid cfg, a missing NATS connection, or whatever
// of these fails.
func New(ctx context.Context, cfg Config, deps Deps) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shipping: config: %w", err)
	}
	p, err := participant.Open(ctx, participant.Config{Name: "shipping", Migrations: sqlstore.Migrations(), Settings: cfg.Settings}, participant.Deps{Logger: deps.Logger, Verifier: deps.Verifier, NATS: deps.NATS, DB: deps.DB})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	cc, err := resilience.Dial(cfg.CatalogAddr,
		resilience.WithName("catalog"),
		resilience.WithIdempotentMethods("/eventshop.catalog.v1.CatalogService/"),
		resilience.WithDialOptions(grpc.WithPerRPCCredentials(auth.ForwardCredentials())))
	if err != nil {
		return nil, fmt.Errorf("shipping: %w", err)
	}
	p.OnClose(cc.Close)
	c := deps.Carrier
	if c == nil {
		c = carrier.NewSimulated(carrier.Faults{FailRate: cfg.FailRate, Latency: cfg.Latency})
	}
	h := app.New(sqlstore.New(p.DB()), catalogclient.New(cc), c, p.Logger())
	err = p.Start(ctx, participant.Wiring{
		Handlers: []participant.Handler{
			participant.Handle(sqlstore.TxView, h.CreateShipment),
			participant.Handle(sqlstore.TxView, h.CancelShipment),
		},
		ReplyID:    app.ReplyID,
		HealthName: shippingv1.ShippingService_ServiceDesc.ServiceName,
		Register: func(s *grpc.Server) {
			shippingv1.RegisterShippingServiceServer(s, grpctransport.NewServer(h, p.Logger()))
		},
		Access: Access,
	})
	if err != nil {
		return nil, err
	}
	return &Service{shell: p}, nil
}

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.shell.Addr() }

// Run serves gRPC and handles commands until ctx is done, then drains both: in-flight
// RPCs finish (bounded by the drain timeout) and unfinished commands go back to the
// stream. It returns nil after a clean stop, the first error of the server or the
// consumer otherwise, and an error if called more than once.
func (s *Service) Run(ctx context.Context) error { return s.shell.Run(ctx) }
