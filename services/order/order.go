// Package order is the order service: event-sourced order commands (place, cancel),
// time-travel queries over the event store, and read-model queries over its projections,
// served over gRPC. cmd/order and cmd/shopd build it with New and start it with Run.
package order

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/eventstore/esdb"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/partition"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/sqldb"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/catalogclient"
	"github.com/eventshop/eventshop/services/order/kvstore"
	"github.com/eventshop/eventshop/services/order/projection"
	"github.com/eventshop/eventshop/services/order/shippingclient"
	grpctransport "github.com/eventshop/eventshop/services/order/transport/grpc"
)

// Defaults of Config.
const (
	DefaultGRPCAddr          = "127.0.0.1:9403"
	DefaultCatalogAddr       = "127.0.0.1:9401"
	DefaultFlatShippingMinor = 499
	DefaultSnapshotEvery     = 50

	// StartTimeout bounds the I/O New does: opening the snapshot bucket and the
	// read-model database.
	StartTimeout = 30 * time.Second
)

// Config configures the order service.
type Config struct {
	// GRPCAddr is the listen address; ":0" picks a free port (see Service.Addr).
	GRPCAddr string
	// CatalogAddr is the catalog service, which prices every order.
	CatalogAddr string
	// ShippingAddr is the shipping service, asked for a quote per order. When empty,
	// every order pays the flat FlatShippingMinor instead.
	ShippingAddr string
	// FlatShippingMinor is the shipping cost, in minor units of the order's currency,
	// charged when ShippingAddr is empty.
	FlatShippingMinor int64
	// SnapshotEvery stores an aggregate snapshot each time an order's version
	// crosses a multiple of it; 0 disables snapshots.
	SnapshotEvery int
	// ReadDSN is the read-model database (SQLite path or postgres:// URL). When
	// empty, no projection runs and GetOrder, ListOrders and ListSalesByProduct
	// answer Unavailable.
	ReadDSN string
	// DrainTimeout bounds the graceful stop; zero means grpcserver.DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Saga runs the fulfilment saga of every placed order (needs Deps.NATS): the
	// orchestrator, its reply consumer and the follower tying orders and sagas
	// together. Off, orders stay PENDING.
	Saga bool
	// SagaTiming tunes the saga's steps; zero values take app.SagaConfig's defaults.
	SagaTiming app.SagaConfig
	// StreamReplicas is the replica count of the streams and buckets the service
	// creates (event store, messaging streams, snapshots, checkpoints): 1 on a single
	// server, 3 on a cluster. Zero means 1.
	StreamReplicas int
	// ReadPartitions splits the projection of the order category among the instances
	// that share a PostgreSQL read model (needs Deps.NATS): each projects the
	// partitions it leases (pkg/partition), and every instance's watches hear of
	// every change. Zero makes each instance project everything, as an instance with
	// a SQLite read model (its own) always does. It must not change while the read
	// model lives: checkpoints are kept per partition.
	ReadPartitions int
	// ReadCache is how many recently read orders GetOrder and WatchOrder answer from
	// memory (projection.OrderCache), kept exact by the projector's changes; 0 reads
	// every order from the database. It applies to a SQLite read model only: where
	// instances share a PostgreSQL one, another instance's writes reach this one
	// through a relay that may lag. RegisterFlags sets it to
	// projection.DefaultOrderCacheSize.
	ReadCache int
	// SharedRead makes the projector, the saga follower and the orchestrator read
	// the order category through one subscription (eventstore.NewShared) instead of
	// one each: each event delivered and decoded once (RegisterFlags turns it on; see
	// BENCHMARKS.md for what it saves). Off, each reads with a subscription of its
	// own.
	SharedRead bool
	// EventStore is where the order streams, each holding its saga's log, are
	// kept: "jetstream" (the default: the NATS the services share), "memory" (this
	// process only; nothing survives a restart: tests and demos), or an
	// EventStoreDB/KurrentDB connection string (esdb://host:2113?tls=false,
	// esdb+discover://…). Commands and replies stay on JetStream; snapshots are kept
	// only with "jetstream", beside the streams they summarise.
	EventStore string
}

// Event store choices besides an EventStoreDB connection string.
const (
	EventStoreJetStream = "jetstream"
	EventStoreMemory    = "memory"
)

// esdbURL reports whether v is an EventStoreDB connection string.
func esdbURL(v string) bool {
	return strings.HasPrefix(v, "esdb://") || strings.HasPrefix(v, "esdb+discover://")
}

// DefaultReadPartitions is Config.ReadPartitions unless set: room for 16 instances.
const DefaultReadPartitions = 16

// PartitionBucket is the key-value bucket of the read model's partition leases.
const PartitionBucket = "order_partitions"

// ChangesSubject carries the read model's committed changes between instances.
const ChangesSubject = "order.changes"

// RegisterFlags defines the order service's flags on fs, with their defaults,
// writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", DefaultGRPCAddr, "gRPC listen address")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", DefaultCatalogAddr, "catalog service gRPC address (prices)")
	fs.StringVar(&c.ShippingAddr, "shipping-addr", "", "shipping service gRPC address (quotes); empty charges -flat-shipping-minor")
	fs.Int64Var(&c.FlatShippingMinor, "flat-shipping-minor", DefaultFlatShippingMinor, "flat shipping cost in minor units, used when -shipping-addr is empty")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", DefaultSnapshotEvery, "store an order snapshot every N events (0 disables)")
	fs.StringVar(&c.ReadDSN, "read-dsn", "", "read-model database: SQLite path or postgres:// URL (empty: no read model)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", grpcserver.DefaultDrainTimeout, "how long in-flight RPCs may finish at shutdown")
	fs.BoolVar(&c.Saga, "saga", true, "run the fulfilment saga of placed orders (payment, inventory, shipping)")
	fs.DurationVar(&c.SagaTiming.StepTimeout, "saga-step-timeout", 30*time.Second, "how long one saga step attempt waits for its reply")
	fs.IntVar(&c.SagaTiming.StepAttempts, "saga-step-attempts", 3, "attempts of a saga step that does not answer before compensating")
	fs.DurationVar(&c.SagaTiming.Backoff, "saga-backoff", time.Second, "first pause between saga step attempts (doubling)")
	fs.DurationVar(&c.SagaTiming.MaxBackoff, "saga-max-backoff", time.Minute, "longest pause between saga step or compensation attempts")
	fs.DurationVar(&c.SagaTiming.StuckAfter, "saga-stuck-after", 30*time.Minute, "an unfinished saga older than this is reported stuck")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replicas of each JetStream stream and bucket created (3 on a NATS cluster)")
	fs.IntVar(&c.ReadPartitions, "read-partitions", DefaultReadPartitions, "partitions of the order category split among the instances sharing a PostgreSQL read model (0: each projects all; never change it on a live read model)")
	fs.IntVar(&c.ReadCache, "read-cache", projection.DefaultOrderCacheSize, "orders GetOrder and WatchOrder answer from memory, kept exact by the projector (SQLite read model only; 0: none)")
	fs.BoolVar(&c.SharedRead, "shared-read", true, "projector, saga follower and orchestrator read the order category through one subscription (false: one each)")
	fs.StringVar(&c.EventStore, "event-store", EventStoreJetStream, "where order streams and saga logs are kept: jetstream, memory (lost at exit) or an EventStoreDB URL (esdb://host:2113?tls=false)")
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
	if c.ShippingAddr == "" && c.FlatShippingMinor < 0 {
		errs = append(errs, fmt.Errorf("flat-shipping-minor %d is negative", c.FlatShippingMinor))
	}
	if c.SnapshotEvery < 0 {
		errs = append(errs, fmt.Errorf("snapshot-every %d is negative", c.SnapshotEvery))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %v is negative", c.DrainTimeout))
	}
	if t := c.SagaTiming; t.StepTimeout < 0 || t.StepAttempts < 0 || t.Backoff < 0 || t.MaxBackoff < 0 || t.StuckAfter < 0 {
		errs = append(errs, fmt.Errorf("saga timing %+v has a negative value", t))
	}
	if c.StreamReplicas < 0 {
		errs = append(errs, fmt.Errorf("stream-replicas %d is negative", c.StreamReplicas))
	}
	if c.ReadPartitions < 0 {
		errs = append(errs, fmt.Errorf("read-partitions %d is negative", c.ReadPartitions))
	}
	if c.ReadCache < 0 {
		errs = append(errs, fmt.Errorf("read-cache %d is negative", c.ReadCache))
	}
	switch {
	case c.EventStore == "", c.EventStore == EventStoreJetStream, c.EventStore == EventStoreMemory:
	case esdbURL(c.EventStore):
		if _, err := esdbclient.ParseConnectionString(c.EventStore); err != nil {
			errs = append(errs, fmt.Errorf("event-store: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("event-store %q: want %s, %s or an EventStoreDB URL (esdb://host:2113?tls=false)", c.EventStore, EventStoreJetStream, EventStoreMemory))
	}
	return errors.Join(errs...)
}

// Deps are the order service's collaborators.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Verifier authenticates every RPC; every order RPC needs a caller. Nil leaves
	// the server unauthenticated, so every RPC answers Unauthenticated.
	Verifier *auth.Verifier
	// NATS backs the JetStream event store and the snapshot bucket. Required unless
	// Store is set.
	NATS *nats.Conn
	// Store overrides the JetStream event store (tests). Snapshots still need NATS.
	Store eventstore.Store
	// OrderPlaced, when set, is told about every placed order (e.g. to start its
	// saga); it must be idempotent by order id.
	OrderPlaced app.OrderPlacedHook
	// WrapSagaCanceller, when set, is middleware around how a user's cancellation
	// is put to the saga (with Config.Saga): tests wrap it in an
	// app.InterleavedCanceller to force the interleavings of a cancellation with the
	// saga's progress.
	WrapSagaCanceller func(app.SagaCanceller) app.SagaCanceller
}

// Service is an order service ready to serve: its listener is open from New on.
type Service struct {
	logger *slog.Logger
	server *grpcserver.Server
	lis    net.Listener
	// esdb is the EventStoreDB client of -event-store esdb://…, closed with the service.
	esdb  *esdbclient.Client
	conns []*grpc.ClientConn
	db    *sqldb.DB
	// projector keeps the read models in db up to date; nil without ReadDSN.
	projector *projection.Projector
	// hub tells WatchOrder what the projector changed; nil without ReadDSN.
	hub *projection.Hub
	// group leases the read model's partitions among the instances sharing it, and
	// relay carries every instance's changes into hub; nil unless the read model is
	// shared (PostgreSQL, Config.ReadPartitions).
	group *partition.Group
	relay *changeRelay
	// orch, replies and follower run the saga; nil without Config.Saga.
	orch     *app.OrderOrchestrator
	replies  *messaging.Consumer
	follower *app.SagaFollower
	// deadLetters reports the dead-letter stream's depth as a metric; nil without
	// the saga.
	deadLetters metric.Registration

	runOnce sync.Once
}

// New wires the service and listens on cfg.GRPCAddr. It returns an error for an
// invalid cfg, missing NATS and Store (or NATS with cfg.Saga), a snapshot or
// checkpoint bucket, stream, consumer or read-model database it cannot open or
// migrate, a malformed client address, or an address it cannot listen on. Start-up
// I/O (buckets, streams, database) ends with ctx, and within StartTimeout.
func New(ctx context.Context, cfg Config, deps Deps) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("order: config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("service", "order")
	s := &Service{logger: logger}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	var js jetstream.JetStream
	if deps.NATS != nil {
		if js, err = jetstream.New(deps.NATS); err != nil {
			return nil, fmt.Errorf("order: jetstream: %w", err)
		}
	}
	store := deps.Store
	onJetStream := false // snapshots live beside the streams: with another store, none
	switch {
	case store != nil:
	case cfg.EventStore == EventStoreMemory:
		store = eventstore.NewMemory()
	case esdbURL(cfg.EventStore):
		client, err := esdb.Dial(cfg.EventStore)
		if err != nil {
			return nil, fmt.Errorf("order: event store: %w", err)
		}
		s.esdb = client
		store = esdb.New(client)
	default:
		if js == nil {
			return nil, errors.New("order: deps: NATS or Store is required")
		}
		jsStore := eventstore.NewJetStream(js, eventstore.WithReplicas(cfg.StreamReplicas))
		// Declared now, so a server too old for the store (eventstore.ErrServerTooOld)
		// stops the start, not the first order.
		if err := jsStore.EnsureCategory(ctx, app.Category); err != nil {
			return nil, fmt.Errorf("order: %w", err)
		}
		store, onJetStream = jsStore, true
	}
	if cfg.SharedRead {
		store = eventstore.NewShared(store)
	}
	repoOpts := []app.RepositoryOption{app.WithLogger(logger)}
	if cfg.SnapshotEvery > 0 && onJetStream {
		snaps, err := kvstore.NewSnapshots(ctx, js, kvstore.SnapshotBucket, kvstore.WithReplicas(cfg.StreamReplicas))
		if err != nil {
			return nil, fmt.Errorf("order: %w", err)
		}
		repoOpts = append(repoOpts, app.WithSnapshots(snaps, cfg.SnapshotEvery))
	}
	repo := app.NewRepository(store, repoOpts...)

	catalogConn, err := s.dial(cfg.CatalogAddr, "catalog")
	if err != nil {
		return nil, err
	}
	var quoter app.ShippingQuoter = app.FlatRate{Units: cfg.FlatShippingMinor}
	if cfg.ShippingAddr != "" {
		shippingConn, err := s.dial(cfg.ShippingAddr, "shipping")
		if err != nil {
			return nil, err
		}
		quoter = shippingclient.New(shippingConn)
	}

	var (
		reads     grpctransport.ReadModel
		transport []grpctransport.Option
	)
	if cfg.ReadDSN != "" {
		if s.db, err = sqldb.Open(ctx, cfg.ReadDSN); err != nil {
			return nil, fmt.Errorf("order: read model: %w", err)
		}
		if err := projection.Migrate(ctx, s.db); err != nil {
			return nil, fmt.Errorf("order: read model: %w", err)
		}
		s.hub = projection.NewHub()
		transport = append(transport, grpctransport.WithChanges(s.hub))
		var notify projection.Notifier = s.hub
		var queryOpts []projection.QueriesOption
		if s.db.Dialect == sqldb.SQLite && cfg.ReadCache > 0 {
			// The cache hears of each change before the watchers do (see OrderCache).
			cache := projection.NewOrderCache(cfg.ReadCache, projection.DefaultOrderCacheTTL)
			queryOpts = append(queryOpts, projection.WithOrderCache(cache))
			notify = cache.Notifier(s.hub)
		}
		reads = readModel{projection.NewQueries(s.db, queryOpts...)}
		if s.db.Dialect == sqldb.Postgres && cfg.ReadPartitions > 0 && js != nil {
			if s.group, err = partition.Join(ctx, js, partition.Config{
				Bucket: PartitionBucket, Partitions: cfg.ReadPartitions, Replicas: cfg.StreamReplicas, Logger: logger,
			}); err != nil {
				return nil, fmt.Errorf("order: read model: %w", err)
			}
			if s.relay, err = newChangeRelay(deps.NATS, ChangesSubject, s.hub, logger); err != nil {
				return nil, fmt.Errorf("order: read model: %w", err)
			}
			notify = s.relay
		}
		if s.projector, err = projection.NewProjector(s.db, store, projection.WithLogger(logger), projection.WithDecoder(app.NewCodec().Decode), projection.WithHub(notify)); err != nil {
			return nil, fmt.Errorf("order: read model: %w", err)
		}
	}

	placeOrder := app.NewPlaceOrder(repo, catalogclient.New(catalogConn), quoter, deps.OrderPlaced)
	cancelOrder := app.NewCancelOrder(repo)
	if cfg.Saga {
		if js == nil {
			return nil, errors.New("order: the saga needs Deps.NATS")
		}
		if err := s.wireSaga(ctx, cfg, js, store, repo); err != nil {
			return nil, err
		}
		placeOrder = placeOrder.WithSagaStart(app.SagaStartAppend(s.orch)).WithSagaResume(s.orch.ResumeSaga)
		var canceller app.SagaCanceller = app.SagaCancel{Orch: s.orch}
		if deps.WrapSagaCanceller != nil {
			canceller = deps.WrapSagaCanceller(canceller)
		}
		cancelOrder = cancelOrder.WithSagaCanceller(canceller)
	}

	s.server = grpcserver.New(
		grpcserver.WithLogger(logger),
		grpcserver.WithDrainTimeout(cfg.DrainTimeout),
		grpcserver.WithVerifier(deps.Verifier, auth.WithAccess(Access), auth.WithLogger(logger)),
	)
	orderv1.RegisterOrderServiceServer(s.server.GRPC(), grpctransport.NewServer(
		placeOrder,
		cancelOrder,
		app.NewQueries(repo),
		reads,
		logger,
		transport...,
	))

	if s.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("order: listen: %w", err)
	}
	return s, nil
}

// wireSaga builds the orchestrator over the event store, its consumer of participant
// replies and the follower that starts sagas from placed orders.
func (s *Service) wireSaga(ctx context.Context, cfg Config, js jetstream.JetStream, store eventstore.Store, repo *app.Repository) error {
	if err := messaging.DeclareStreams(ctx, js, messaging.StreamsConfig{Replicas: cfg.StreamReplicas}); err != nil {
		return fmt.Errorf("order: streams: %w", err)
	}
	bus := messaging.New(js, "order")
	tr := saga.BusTransport{Bus: bus}
	// The saga's log is the order's own stream: each fact of the fulfilment is
	// written once, and the order reads it from there (app.Codec).
	orch, err := saga.New(app.OrderSaga(cfg.SagaTiming), store, tr, saga.WithLogger(s.logger), saga.WithCategory(app.Category))
	if err != nil {
		return fmt.Errorf("order: saga: %w", err)
	}
	s.orch = orch
	s.replies, err = bus.NewConsumer(ctx, messaging.ConsumerConfig{
		Durable:  "order-saga-replies",
		Subjects: app.ReplySubjects,
		Logger:   s.logger,
		// Replies only append to saga logs; more of them at once keeps a flash sale moving.
		Concurrency: 16,
	},
		saga.ReplyHandler[*paymentv1.PaymentAuthorized](orch),
		saga.ReplyHandler[*paymentv1.PaymentDeclined](orch),
		saga.ReplyHandler[*paymentv1.PaymentCaptured](orch),
		saga.ReplyHandler[*paymentv1.PaymentCaptureFailed](orch),
		saga.ReplyHandler[*paymentv1.AuthorizationVoided](orch),
		saga.ReplyHandler[*paymentv1.PaymentRefunded](orch),
		saga.ReplyHandler[*paymentv1.RefundFailed](orch),
		saga.ReplyHandler[*inventoryv1.InventoryReserved](orch),
		saga.ReplyHandler[*inventoryv1.InventoryRejected](orch),
		saga.ReplyHandler[*inventoryv1.ReservationCommitted](orch),
		saga.ReplyHandler[*inventoryv1.ReservationCommitFailed](orch),
		saga.ReplyHandler[*inventoryv1.InventoryReleased](orch),
		saga.ReplyHandler[*shippingv1.ShipmentCreated](orch),
		saga.ReplyHandler[*shippingv1.ShipmentFailed](orch),
		saga.ReplyHandler[*shippingv1.ShipmentCancelled](orch),
	)
	if err != nil {
		return fmt.Errorf("order: saga replies: %w", err)
	}
	checkpoints, err := kvstore.NewCheckpoints(ctx, js, kvstore.CheckpointBucket, kvstore.WithReplicas(cfg.StreamReplicas))
	if err != nil {
		return fmt.Errorf("order: %w", err)
	}
	s.follower = app.NewSagaFollower(orch, store, tr,
		app.WithCheckpoints(checkpoints, time.Second), app.WithFollowerLogger(s.logger))
	// The order service sends every command, so the commands it finds dead are its
	// operators' to look at: it reports their number.
	if s.deadLetters, err = messaging.NewDeadLetters(js).ObserveDepth(nil); err != nil {
		return fmt.Errorf("order: %w", err)
	}
	return nil
}

// Saga returns the fulfilment saga of an order as its log says now. It returns
// saga.ErrNotFound when the order has no saga (yet), and an error when the service
// runs without the saga.
func (s *Service) Saga(ctx context.Context, orderID string) (saga.State, error) {
	if s.orch == nil {
		return saga.State{}, errors.New("order: the saga is not running")
	}
	return s.orch.Get(ctx, orderID)
}

// StuckSagas lists the sagas this instance runs that passed their stuck deadline
// (Config.SagaTiming.StuckAfter) without ending, oldest first: what the operator's
// page shows. It returns an error when the service runs without the saga.
func (s *Service) StuckSagas(ctx context.Context) ([]saga.State, error) {
	if s.orch == nil {
		return nil, errors.New("order: the saga is not running")
	}
	return s.orch.Stuck(ctx)
}

// dial opens a resilient client connection that forwards the caller's token.
func (s *Service) dial(addr, name string) (*grpc.ClientConn, error) {
	cc, err := resilience.Dial(addr,
		resilience.WithName(name),
		resilience.WithLogger(s.logger),
		resilience.WithDialOptions(grpc.WithPerRPCCredentials(auth.ForwardCredentials())),
	)
	if err != nil {
		return nil, fmt.Errorf("order: %s client: %w", name, err)
	}
	s.conns = append(s.conns, cc)
	return cc, nil
}

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Run serves gRPC and, with a read model, runs its projector, until ctx is done;
// then it drains in-flight RPCs (bounded by the drain timeout), stops the
// projector, closes its clients and database, and returns nil. A failing projector
// is logged and restarted with backoff while the service keeps serving (its lag
// shows in the projection.lag.seconds gauge). Run returns the server's error if
// serving fails, and an error if called more than once.
func (s *Service) Run(ctx context.Context) error {
	err := errors.New("order: Run called twice")
	s.runOnce.Do(func() {
		defer s.close()
		var wg sync.WaitGroup
		projCtx, stopProjector := context.WithCancel(ctx)
		switch {
		case s.group != nil:
			wg.Go(func() {
				s.keepRunning(projCtx, "partitions", func(ctx context.Context) error { return s.group.Run(ctx, s.runPartitions) })
			})
			wg.Go(func() { s.relay.watchReconnects(projCtx) })
		case s.projector != nil:
			wg.Go(func() { s.keepRunning(projCtx, "projection", s.projector.Run) })
		}
		if s.projector != nil {
			// Open watches end as shutdown begins instead of holding the drain.
			defer context.AfterFunc(ctx, s.hub.Close)()
		}
		if s.orch != nil {
			s.runSaga(projCtx, &wg)
		}
		s.server.Health().SetServingStatus(orderv1.OrderService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		s.logger.InfoContext(ctx, "order serving", "addr", s.Addr().String(), "read_model", s.projector != nil)
		err = s.server.Serve(ctx, s.lis)
		stopProjector()
		wg.Wait()
		s.logger.InfoContext(ctx, "order stopped")
	})
	return err
}

// runSaga runs the orchestrator, the reply consumer and (unless the partitions
// run it) the follower until ctx ends; a part that fails is logged and restarted
// with backoff.
func (s *Service) runSaga(ctx context.Context, wg *sync.WaitGroup) {
	parts := map[string]func(context.Context) error{"orchestrator": s.orch.Run, "replies": s.replies.Run}
	if s.group == nil {
		parts["follower"] = s.follower.Run
	}
	for name, run := range parts {
		wg.Go(func() { s.keepRunning(ctx, "saga "+name, run) })
	}
}

// runPartitions is the work of this instance's partitions (partition.Group.Run):
// their projection and, with the saga, their follower, until ctx ends or one fails,
// which stops the other and returns its error.
func (s *Service) runPartitions(ctx context.Context, owned []int) error {
	g, ctx := errgroup.WithContext(ctx)
	n := s.group.Partitions()
	g.Go(func() error { return s.projector.RunPartitions(ctx, n, owned) })
	if s.follower != nil {
		g.Go(func() error { return s.follower.RunPartitions(ctx, n, owned) })
	}
	return g.Wait()
}

// keepRunning calls run until ctx ends, pausing with backoff after each failure.
func (s *Service) keepRunning(ctx context.Context, name string, run func(context.Context) error) {
	pauses := resilience.Backoff{Initial: time.Second, Max: 30 * time.Second}
	for {
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		pause := pauses.Next()
		s.logger.ErrorContext(ctx, "order: "+name+" stopped; restarting", "error", err, "backoff", pause)
		if resilience.Sleep(ctx, pause) != nil {
			return
		}
	}
}

func (s *Service) close() {
	if s.esdb != nil {
		_ = s.esdb.Close()
		s.esdb = nil
	}
	if s.deadLetters != nil {
		_ = s.deadLetters.Unregister()
		s.deadLetters = nil
	}
	for _, cc := range s.conns {
		_ = cc.Close()
	}
	s.conns = nil
	if s.relay != nil {
		s.relay.close()
		s.relay = nil
	}
	if s.projector != nil {
		_ = s.projector.Close()
		s.projector = nil
	}
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
	if s.lis != nil {
		_ = s.lis.Close()
	}
}

// readModel translates the projection's errors into the ones the transport maps.
type readModel struct{ q *projection.Queries }

var _ grpctransport.ReadModel = readModel{}

func (r readModel) GetOrder(ctx context.Context, id string) (*orderv1.Order, error) {
	o, err := r.q.GetOrder(ctx, id)
	return o, readErr(err)
}

func (r readModel) ListOrdersByUser(ctx context.Context, userID string, status orderv1.OrderStatus, pageSize int, pageToken string) ([]*orderv1.Order, string, error) {
	orders, next, err := r.q.ListOrdersByUser(ctx, userID, status, pageSize, pageToken)
	return orders, next, readErr(err)
}

func (r readModel) SalesByProduct(ctx context.Context, limit int) ([]*orderv1.ProductSales, error) {
	sales, err := r.q.SalesByProduct(ctx, limit)
	return sales, readErr(err)
}

func readErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, projection.ErrNotFound):
		return fmt.Errorf("%w: %w", app.ErrNotFound, err)
	case errors.Is(err, projection.ErrInvalidPageToken):
		return fmt.Errorf("%w: %w", app.ErrInvalidPageToken, err)
	case sqldb.IsUnavailable(err):
		// The read model's database is restarting or out of reach: an outage of a
		// dependency, answered so that callers' breakers to this service stay closed
		// (placing orders never touches the read model).
		return fmt.Errorf("%w: read model: %w", app.ErrUnavailable, err)
	}
	return err
}

// RebuildProjections rebuilds the read models in cfg.ReadDSN from the event store
// (see projection.Rebuild) and returns; a running service keeps serving the old
// tables until the rebuilt ones are swapped in. It returns an error when
// cfg.ReadDSN is empty or deps has neither NATS nor Store, and the error of the
// database or the rebuild.
func RebuildProjections(ctx context.Context, cfg Config, deps Deps) error {
	if cfg.ReadDSN == "" {
		return errors.New("order: projections rebuild: -read-dsn (SHOP_READ_DSN) is empty")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	store := deps.Store
	if store == nil {
		if deps.NATS == nil {
			return errors.New("order: projections rebuild: NATS or Store is required")
		}
		js, err := jetstream.New(deps.NATS)
		if err != nil {
			return fmt.Errorf("order: jetstream: %w", err)
		}
		store = eventstore.NewJetStream(js, eventstore.WithReplicas(cfg.StreamReplicas))
	}
	db, err := sqldb.Open(ctx, cfg.ReadDSN)
	if err != nil {
		return fmt.Errorf("order: projections rebuild: %w", err)
	}
	defer db.Close()
	err = projection.Rebuild(ctx, db, store, func(p projection.RebuildProgress) {
		if p.Swapped {
			logger.InfoContext(ctx, "order read models rebuilt", "events", p.Applied)
			return
		}
		// One line per batch: a long replay shows it is moving and how far it got.
		logger.InfoContext(ctx, "rebuilding order read models", "events", p.Applied, "position", uint64(p.Position))
	}, projection.WithDecoder(app.NewCodec().Decode))
	if err != nil {
		return fmt.Errorf("order: projections rebuild: %w", err)
	}
	return nil
}

// Access: reading one's orders needs orders:read, placing and cancelling
// orders:write, the sales figures the admin role; the names of the best sellers
// are public.
var Access = auth.Access{
	orderv1.OrderService_PlaceOrder_FullMethodName:         {Scope: auth.ScopeOrdersWrite},
	orderv1.OrderService_CancelOrder_FullMethodName:        {Scope: auth.ScopeOrdersWrite},
	orderv1.OrderService_GetOrder_FullMethodName:           {Scope: auth.ScopeOrdersRead},
	orderv1.OrderService_WatchOrder_FullMethodName:         {Scope: auth.ScopeOrdersRead},
	orderv1.OrderService_ListOrders_FullMethodName:         {Scope: auth.ScopeOrdersRead},
	orderv1.OrderService_GetOrderHistory_FullMethodName:    {Scope: auth.ScopeOrdersRead},
	orderv1.OrderService_GetOrderAt_FullMethodName:         {Scope: auth.ScopeOrdersRead},
	orderv1.OrderService_ListSalesByProduct_FullMethodName: {Role: auth.RoleAdmin},
	orderv1.OrderService_ListBestSellers_FullMethodName:    {Public: true},
}
