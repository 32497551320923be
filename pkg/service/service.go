// Package service starts a standalone service binary: the flags every service shares
// (telemetry, metrics endpoint, log level), telemetry set-up and flush, and running
// until SIGINT or SIGTERM.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/telemetry"
)

// shutdownTimeout bounds the telemetry flush after the service stopped.
const shutdownTimeout = 5 * time.Second

// Config holds the start-up settings every service binary shares.
type Config struct {
	Telemetry   telemetry.Config
	MetricsAddr string
	LogLevel    slog.Level
}

// RegisterFlags defines the telemetry flags, -metrics-addr and -log-level on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Telemetry.RegisterFlags(fs)
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 0.0.0.0:9464); empty serves none")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
}

// Run sets up telemetry as service name (its logger becomes slog's default), serves
// metrics when MetricsAddr is set, and calls serve with a context that ends on
// SIGINT, SIGTERM or the end of ctx, and the telemetry (its Logger, and its
// MetricsHandler for a service that serves metrics itself). When serve returns it
// flushes telemetry, for at most 5 seconds. It returns the telemetry set-up error,
// the metrics listen error or serve's error, except that of a start-up that ended
// because it was asked to stop (Ctrl-C during a slow migration is a stop, not a
// failure).
func (c Config) Run(ctx context.Context, name string, serve func(ctx context.Context, tel *telemetry.Telemetry) error) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	c.Telemetry.ServiceName = name
	tel, err := telemetry.Setup(ctx, c.Telemetry, telemetry.WithLogLevel(c.LogLevel))
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		tel.Shutdown(sctx)
	}()
	logger := tel.Logger()
	slog.SetDefault(logger)
	if c.MetricsAddr != "" {
		closeMetrics, err := serveMetrics(c.MetricsAddr, tel.MetricsHandler(), logger)
		if err != nil {
			return err
		}
		defer closeMetrics()
	}
	err = serve(ctx, tel)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		logger.Info("stopped while starting", "error", err)
		return nil
	}
	return err
}

// serveMetrics serves h at /metrics on addr until shutdown is called. It returns the
// listen error; a later failure to serve is logged (the service goes on without
// metrics rather than stopping for them).
func serveMetrics(addr string, h http.Handler, logger *slog.Logger) (shutdown func() error, err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "addr", addr, "error", err)
		}
	}()
	return srv.Close, nil
}

// Main calls run with the command-line arguments and exits: with status 0 when run
// returns nil or flag.ErrHelp, else with status 1 after printing prefix and the error
// to stderr.
func Main(prefix string, run func(ctx context.Context, args []string) error) {
	os.Exit(config.ExitStatus(os.Stderr, prefix, run(context.Background(), os.Args[1:])))
}
