// Package natsembed gives every process the same way to reach NATS JetStream: start an
// embedded server with file storage bound to loopback, or connect to an external one
// when a URL is configured. Callers never need to know which of the two they got.
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config chooses between an external server (URL) and an embedded one.
type Config struct {
	// URL of an external NATS server with JetStream. When set, nothing is embedded.
	URL string
	// StoreDir is where the embedded server keeps JetStream files. Required when URL is
	// empty; created if missing.
	StoreDir string
	// Host the embedded server binds to; defaults to 127.0.0.1 so a laptop run never
	// exposes the broker.
	Host string
	// Port of the embedded server; 0 picks a random free port.
	Port int
	// ServerName names the embedded server (JetStream needs a stable one to recover
	// its store across restarts). Defaults to "shopd".
	ServerName string
	// SyncAlways makes the embedded server fsync every JetStream write before
	// acknowledging it (nats-server's sync_interval: always). Off, writes reach the
	// operating system at once and the disk every two minutes (the server's
	// default): a crash of the process loses nothing acknowledged, a crash of the
	// machine may lose the last writes.
	SyncAlways bool
	// Users, when set, are the only clients the embedded server accepts, each with
	// its permissions (natsauth.Identities.Users); a client without one of their keys
	// is refused. Empty leaves the server open to any client on Host, which only
	// tests of single packages should want.
	Users []*server.NkeyUser
	// Identity, when set, is how Start connects to check that an external server
	// answers (natsauth.Option): a server with users refuses a client without one.
	Identity nats.Option
	// ReadyTimeout bounds how long Start waits for the embedded server.
	ReadyTimeout time.Duration
	// Logger receives start and stop messages. Defaults to slog.Default().
	Logger *slog.Logger
}

// Server is a running NATS endpoint: embedded (owned, shut down by Close) or external.
type Server struct {
	url    string
	srv    *server.Server // nil when external
	logger *slog.Logger
}

// Start starts the embedded server or checks that the external one answers.
// It returns an error if the store directory cannot be created, the server does not
// become ready within ReadyTimeout, or the external server is unreachable.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.URL != "" {
		s := &Server{url: cfg.URL, logger: logger}
		nc, err := s.Connect(nats.Timeout(cfg.ReadyTimeout), cfg.Identity)
		if err != nil {
			return nil, fmt.Errorf("natsembed: connect %s: %w", cfg.URL, err)
		}
		nc.Close()
		logger.InfoContext(ctx, "using external nats", "url", cfg.URL)
		return s, nil
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required for an embedded server")
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("natsembed: store dir: %w", err)
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := cfg.ServerName
	if name == "" {
		name = "shopd"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		NoLog:      true,
		NoSigs:     true,
		// Large enough for event payloads with headers, small enough to catch misuse.
		MaxPayload: 8 << 20,
		Nkeys:      cfg.Users,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: new server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready after %s", cfg.ReadyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errors.New("natsembed: JetStream did not start")
	}
	logger.InfoContext(ctx, "embedded nats started", "url", srv.ClientURL(), "store_dir", cfg.StoreDir)
	return &Server{url: srv.ClientURL(), srv: srv, logger: logger}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.url }

// Embedded reports whether this process owns the server.
func (s *Server) Embedded() bool { return s.srv != nil }

// Connect opens a client connection that keeps reconnecting forever: a broker restart
// must never silently end a long-running service's subscriptions. To an embedded
// server it connects in-process (no socket): every command, reply and event of the
// embedded shop crosses this connection, and over loopback TCP each one cost a write
// and a read system call on both sides.
// Nil options are skipped, so an unset identity can be passed as it is.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if s.srv != nil {
		base = append(base, nats.InProcessServer(s.srv))
	}
	for _, o := range opts {
		if o != nil { // an identity left unset
			base = append(base, o)
		}
	}
	return nats.Connect(s.url, base...)
}

// Close shuts an embedded server down and waits for it; it does nothing for an
// external one.
func (s *Server) Close() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.logger.Info("embedded nats stopped")
}
