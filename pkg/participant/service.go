package participant

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
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

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/sqldb"
)

// DefaultRetention is Settings.Retention when zero: it outlives the EVENTS stream and
// any saga retry.
const DefaultRetention = 14 * 24 * time.Hour

// Settings are what every participant is configured with; each service's Config
// embeds them next to its own settings.
type Settings struct {
	// GRPCAddr is the listen address; ":0" picks a free port.
	GRPCAddr string
	// DBDSN names the SQL database (sqldb.Open): a SQLite path or a postgres:// URL.
	// Unused when Deps.DB is set.
	DBDSN string
	// BatchSize is the most commands decided in one SQL transaction; zero takes
	// messaging.DefaultBatchSize, 1 commits every command alone.
	BatchSize int
	// Concurrency is the number of batches handled at once; zero takes the messaging
	// default.
	Concurrency int
	// MaxDeliver and Backoff tune command redelivery (a transient failure is retried
	// this way); zero values take the messaging defaults.
	MaxDeliver int
	Backoff    []time.Duration
	// Retention is how long handled command ids and their replies are kept; a command
	// resent later is handled as new. Zero means DefaultRetention.
	Retention time.Duration
	// DrainTimeout bounds the graceful stop; zero means grpcserver.DefaultDrainTimeout.
	DrainTimeout time.Duration
	// StreamReplicas is the replica count of the JetStream streams declared: 1 on a
	// single server, 3 on a cluster. Zero means 1.
	StreamReplicas int
}

// RegisterFlags defines the shared flags on fs, with grpcAddr and dbDSN as the
// defaults of -grpc-addr and -db-dsn, writing into s.
func (s *Settings) RegisterFlags(fs *flag.FlagSet, grpcAddr, dbDSN string) {
	fs.StringVar(&s.GRPCAddr, "grpc-addr", grpcAddr, "gRPC listen address")
	fs.StringVar(&s.DBDSN, "db-dsn", dbDSN, "SQL database: SQLite file path or postgres:// URL")
	fs.IntVar(&s.BatchSize, "batch-size", 0, "most commands decided in one SQL transaction (0: messaging default, 1: one per transaction)")
	fs.IntVar(&s.Concurrency, "concurrency", 0, "batches of commands handled at once (0: messaging default)")
	fs.IntVar(&s.MaxDeliver, "max-deliver", 0, "attempts per command before dead-lettering (0: messaging default)")
	fs.DurationVar(&s.Retention, "retention", DefaultRetention, "how long processed command ids and their replies are kept")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", grpcserver.DefaultDrainTimeout, "how long in-flight RPCs may finish at shutdown")
	fs.IntVar(&s.StreamReplicas, "stream-replicas", 1, "replicas of each JetStream stream declared (3 on a NATS cluster)")
}

// Validate returns every problem of the settings joined into one error.
func (s Settings) Validate() error {
	var errs []error
	if s.GRPCAddr == "" {
		errs = append(errs, errors.New("grpc-addr is empty"))
	}
	if s.BatchSize < 0 || s.Concurrency < 0 || s.MaxDeliver < 0 {
		errs = append(errs, errors.New("batch-size, concurrency and max-deliver must not be negative"))
	}
	if s.StreamReplicas < 0 {
		errs = append(errs, fmt.Errorf("stream-replicas %d is negative", s.StreamReplicas))
	}
	if s.Retention < 0 || s.DrainTimeout < 0 {
		errs = append(errs, errors.New("retention and drain-timeout must not be negative"))
	}
	for _, d := range s.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff %v must be positive", d))
		}
	}
	return errors.Join(errs...)
}

// Config is what the shell of a participant is configured with. The service's name
// fixes the names of everything it owns: durable consumer "<name>-commands" on
// "cmd.<name>.>", ce-source "/eventshop/<name>", tables "<name>_inbox",
// "<name>_replies" and "<name>_migrations".
type Config struct {
	// Name is the service's name, e.g. "payment". Required.
	Name string
	// Migrations is the root of the service's own schema migrations. Required.
	Migrations fs.FS
	Settings
}

// Durable is the name of the participant's durable command consumer.
func (c Config) Durable() string { return natsauth.CommandConsumer(c.Name) }

// Validate returns every problem of the config joined into one error.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" || strings.ContainsAny(c.Name, ".*> \t") {
		errs = append(errs, fmt.Errorf("name %q must be non-empty without . * > or spaces", c.Name))
	}
	if c.Migrations == nil {
		errs = append(errs, errors.New("migrations are required"))
	}
	return errors.Join(append(errs, c.Settings.Validate())...)
}

// Deps are the collaborators of the shell.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Verifier authenticates callers of the queries; nil leaves the server open.
	Verifier *auth.Verifier
	// NATS is the connection commands arrive on and replies leave by. Required.
	NATS *nats.Conn
	// DB, when set, is used instead of opening Config.DBDSN; the caller closes it.
	DB *sqldb.DB
}

// Service is the shell a participant runs in: its database, bus, command consumer,
// gRPC server and background tasks. Build it in two steps: Open gives the database and
// bus the participant builds its store and handlers over, Start declares the consumer
// and listens.
type Service struct {
	cfg      Config
	logger   *slog.Logger
	verifier *auth.Verifier
	db       *sqldb.DB
	bus      *messaging.Bus
	replies  *messaging.Replies
	runtime  *Runtime
	consumer *messaging.BatchConsumer
	server   *grpcserver.Server
	health   string
	lis      net.Listener
	tasks    []func(context.Context)
	closers  []func() error

	runOnce sync.Once
}

// Open opens and migrates the database (the service's migrations, then its inbox and
// replies), and declares the streams. It returns an error for an invalid cfg, a missing
// NATS connection, or whatever of these fails; nothing stays open then.
func Open(ctx context.Context, cfg Config, deps Deps) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", cfg.Name, err)
	}
	if deps.NATS == nil {
		return nil, fmt.Errorf("%s: Deps.NATS is required", cfg.Name)
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{cfg: cfg, logger: logger.With("service", cfg.Name), verifier: deps.Verifier}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.db = deps.DB
	if s.db == nil {
		if s.db, err = openDB(ctx, cfg.DBDSN); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Name, err)
		}
		s.closers = append(s.closers, s.db.Close)
	}
	if s.replies, err = Migrate(ctx, s.db, cfg.Name, cfg.Migrations); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("%s: jetstream: %w", cfg.Name, err)
	}
	if err := messaging.DeclareStreams(ctx, js, messaging.StreamsConfig{Replicas: cfg.StreamReplicas}); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	s.bus = messaging.New(js, cfg.Name)
	return s, nil
}

// Migrate applies the migrations of participant name to db (recorded in
// "<name>_migrations"), then the runtime's own (recorded in
// "<name>_runtime_migrations": version 1 creates the replies table), and returns the
// replies for NewRuntime. A database whose replies table an earlier release created
// outside any migration keeps it and its rows: the migration creates it only if it
// is missing. It returns the database error or sqldb.ErrInvalidMigration.
func Migrate(ctx context.Context, db *sqldb.DB, name string, migrations fs.FS) (*messaging.Replies, error) {
	if err := sqldb.Migrate(ctx, db, migrations, name+"_migrations"); err != nil {
		return nil, err
	}
	replies := messaging.NewReplies(name + "_replies")
	runtime := []sqldb.Migration{{Version: 1, Name: "001_replies.sql", SQL: replies.Schema()}}
	if err := sqldb.Apply(ctx, db, runtime, name+"_runtime_migrations"); err != nil {
		return nil, err
	}
	return replies, nil
}

// DB is the participant's database.
func (s *Service) DB() *sqldb.DB { return s.db }

// Bus is the participant's bus, for events it publishes besides replies.
func (s *Service) Bus() *messaging.Bus { return s.bus }

// Logger is the participant's logger.
func (s *Service) Logger() *slog.Logger { return s.logger }

// Runtime is the runtime Start built, nil before.
func (s *Service) Runtime() *Runtime { return s.runtime }

// OnClose registers fn to run when the service stops (or fails to start), in reverse
// order of registration.
func (s *Service) OnClose(fn func() error) { s.closers = append(s.closers, fn) }

// Wiring is what a participant declares besides its schema: its decisions, its
// queries and its own background tasks.
type Wiring struct {
	// Handlers are the participant's decisions, one per command type. Required.
	Handlers []Handler
	// ReplyID derives a reply's event id from its command's id. Required.
	ReplyID func(commandID string) string
	// HealthName is the gRPC service name reported SERVING once running.
	HealthName string
	// Register registers the query services on the gRPC server.
	Register func(*grpc.Server)
	// Access says who may call each method of the participant's gRPC service; a
	// method it does not list is refused (see auth.WithAccess).
	Access auth.Access
	// Tasks run next to the consumer until the service stops, e.g. a sweeper.
	Tasks []func(ctx context.Context)
}

// Start builds the runtime of w's handlers, declares the command consumer and listens
// on Config.GRPCAddr. It returns the JetStream error of declaring the consumer or the
// listen error; the caller then calls Close. It panics, as NewRuntime does, when w has
// no handlers, two of one type or no ReplyID: that is a wiring mistake.
func (s *Service) Start(ctx context.Context, w Wiring) error {
	s.runtime = NewRuntime(s.db, s.replies, w.ReplyID, w.Handlers...)
	var err error
	s.consumer, err = s.bus.NewBatchConsumer(ctx, messaging.BatchConsumerConfig{
		ConsumerConfig: messaging.ConsumerConfig{
			Durable:     s.cfg.Durable(),
			Subjects:    []string{messaging.CommandPrefix + s.cfg.Name + ".>"},
			Concurrency: s.cfg.Concurrency,
			MaxDeliver:  s.cfg.MaxDeliver,
			Backoff:     s.cfg.Backoff,
			Logger:      s.logger,
		},
		BatchSize: s.cfg.BatchSize,
		Types:     s.runtime.Types(),
	}, s.runtime.HandleBatch)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	s.server = grpcserver.New(
		grpcserver.WithLogger(s.logger),
		grpcserver.WithDrainTimeout(s.cfg.DrainTimeout),
		grpcserver.WithVerifier(s.verifier, auth.WithAccess(w.Access), auth.WithLogger(s.logger)),
	)
	if w.Register != nil {
		w.Register(s.server.GRPC())
	}
	s.health = w.HealthName
	s.tasks = append(s.tasks, w.Tasks...)
	if s.lis, err = net.Listen("tcp", s.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("%s: listen: %w", s.cfg.Name, err)
	}
	return nil
}

// Addr returns the address the service listens on; nil before Start.
func (s *Service) Addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// Run serves gRPC, handles commands and runs the tasks and the pruning of handled
// commands until ctx is done, then drains: in-flight RPCs finish (bounded by the drain
// timeout) and unfinished commands go back to the stream. It closes the service when
// it returns. It returns nil after a clean stop, the first error of the server or the
// consumer otherwise, and an error if called before Start or more than once.
func (s *Service) Run(ctx context.Context) error {
	if s.consumer == nil || s.lis == nil {
		return fmt.Errorf("%s: Run before Start", s.cfg.Name)
	}
	err := fmt.Errorf("%s: Run called twice", s.cfg.Name)
	s.runOnce.Do(func() {
		defer s.Close()
		if s.health != "" {
			s.server.Health().SetServingStatus(s.health, healthpb.HealthCheckResponse_SERVING)
		}
		s.logger.InfoContext(ctx, s.cfg.Name+" serving", "addr", s.Addr().String())
		err = service.Together(ctx, []func(context.Context) error{
			func(ctx context.Context) error { return s.server.Serve(ctx, s.lis) },
			s.consumer.Run,
		}, append([]func(context.Context){s.prune}, s.tasks...)...)
		s.logger.InfoContext(ctx, s.cfg.Name+" stopped")
	})
	return err
}

// prune forgets handled commands older than the retention, at start and hourly.
func (s *Service) prune(ctx context.Context) {
	messaging.PruneEvery(ctx, time.Hour, s.cfg.Retention, s.logger, s.runtime.Prune)
}

// Close releases what Open and Start acquired; Run calls it when it returns. It is for
// a service that failed to start, and safe to call more than once.
func (s *Service) Close() {
	if s.lis != nil {
		_ = s.lis.Close()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
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
