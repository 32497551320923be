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
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/resilience"
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
	DefaultRetention = participant.DefaultRetention
)

// Access: one product's stock level is public (the storefront shows it); listing and
// setting stock are for admins.
var Access = auth.Access{
	inventoryv1.InventoryService_GetStock_FullMethodName:  {Public: true},
	inventoryv1.InventoryService_ListStock_FullMethodName: {Role: auth.RoleAdmin},
	inventoryv1.InventoryService_SetStock_FullMethodName:  {Role: auth.RoleAdmin},
}

// ConsumerName is the durable consumer of the inventory commands, named by the
// participant shell after the service. Renaming it is a deliberate replay of every
// unacknowledged command.
const ConsumerName = "inventory-commands"

// Config configures the inventory service: the settings every participant has
// (listen address, database, batching, redelivery, retention), seeding and
// reservation expiry.
type Config struct {
	participant.Settings
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
}

// RegisterFlags defines the service's flags on fs, with their defaults, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Settings.RegisterFlags(fs, DefaultGRPCAddr, DefaultDBDSN)
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog gRPC address (products to seed)")
	fs.Int64Var(&c.SeedStock, "seed-stock", DefaultSeedStock, "units given at start to every catalog product without stock (0: no seeding)")
	fs.DurationVar(&c.ReservationTTL, "reservation-ttl", DefaultReservationTTL, "how long an uncommitted reservation is held")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", DefaultSweepInterval, "how often expired reservations are released")
}

func (c Config) withDefaults() Config {
	if c.ReservationTTL == 0 {
		c.ReservationTTL = DefaultReservationTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	return c
}

// Validate returns an error describing each invalid field.
func (c Config) Validate() error {
	errs := []error{c.Settings.Validate()}
	if c.SeedStock > 0 && c.CatalogAddr == "" {
		errs = append(errs, errors.New("catalog-addr is empty but seed-stock is set"))
	}
	if c.ReservationTTL < 0 || c.SweepInterval < 0 {
		errs = append(errs, errors.New("reservation-ttl and sweep-interval must not be negative"))
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
	cfg    Config
	shell  *participant.Service
	logger *slog.Logger
	app    *app.Handlers
	store  *sqlstore.Store
}

// New opens and migrates the database, seeds stock for the catalog's products,
// declares the streams and the command consumer, and listens on cfg.GRPCAddr; ctx
// bounds this start-up I/O. It returns an error for an invalid cfg, a missing NATS
// connection, or whatever of these fails (the catalog unreachable while seeding
// included).
func New(ctx context.Context, cfg Config, deps Deps) (_ *Service, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inventory: config: %w", err)
	}
	p, err := participant.Open(ctx, participant.Config{Name: "inventory", Migrations: sqlstore.Migrations(), Settings: cfg.Settings}, participant.Deps{Logger: deps.Logger, Verifier: deps.Verifier, NATS: deps.NATS, DB: deps.DB})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	s := &Service{cfg: cfg, shell: p, logger: p.Logger(), store: sqlstore.New(p.DB())}
	if err := s.registerMetrics(); err != nil {
		return nil, fmt.Errorf("inventory: metrics: %w", err)
	}
	if cfg.SeedStock > 0 {
		if err := s.seed(ctx, cfg); err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
	}
	s.app = app.New(s.store, p.Bus(), cfg.ReservationTTL, s.logger)
	err = p.Start(ctx, participant.Wiring{
		Handlers: []participant.Handler{
			participant.Handle(sqlstore.TxView, s.app.ReserveInventory),
			participant.Handle(sqlstore.TxView, s.app.CommitReservation),
			participant.Handle(sqlstore.TxView, s.app.ReleaseInventory),
		},
		ReplyID:    app.ReplyID,
		HealthName: inventoryv1.InventoryService_ServiceDesc.ServiceName,
		Register: func(srv *grpc.Server) {
			inventoryv1.RegisterInventoryServiceServer(srv, grpctransport.NewServer(s.app, s.logger))
		},
		Access: Access,
		Tasks:  []func(context.Context){s.sweep},
	})
	if err != nil {
		return nil, err
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

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.shell.Addr() }

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
func (s *Service) Run(ctx context.Context) error { return s.shell.Run(ctx) }

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
