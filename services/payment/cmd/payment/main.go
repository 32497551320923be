// Command payment runs the payment service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
package main

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

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/payment"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		cfg          payment.Config
		telCfg       telemetry.Config
		metricsAddr  string
		natsURL      string
		readDSN      string
		oidcIssuer   string
		oidcAudience string
		logLevel     slog.Level
	)
	fs := flag.NewFlagSet("payment", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	telCfg.RegisterFlags(fs)
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 0.0.0.0:9464); empty serves none")
	fs.StringVar(&natsURL, "nats-url", nats.DefaultURL, "NATS JetStream URL")
	fs.StringVar(&readDSN, "read-dsn", "", "database shared by the services (e.g. postgres://...); used when -db-dsn is not given")
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL; the queries require a token when set")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if readDSN != "" && !given(fs, "db-dsn") {
		cfg.DBDSN = readDSN
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	telCfg.ServiceName = "payment"
	tel, err := telemetry.Setup(ctx, telCfg, telemetry.WithLogLevel(logLevel))
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		tel.Shutdown(sctx)
	}()
	logger := tel.Logger()
	slog.SetDefault(logger)
	if metricsAddr != "" {
		closeMetrics, err := serveMetrics(metricsAddr, tel.MetricsHandler())
		if err != nil {
			return err
		}
		defer closeMetrics()
	}

	nc, err := nats.Connect(natsURL, nats.Name("payment"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	defer nc.Drain()

	deps := payment.Deps{Logger: logger, NATS: nc}
	if oidcIssuer != "" {
		v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
		if err != nil {
			return err
		}
		deps.Verifier = v
	}
	svc, err := payment.New(cfg, deps)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// given reports whether the flag was set, on the command line or from its variable.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// serveMetrics serves h at /metrics on addr until shutdown is called. It
// returns the listen error.
func serveMetrics(addr string, h http.Handler) (shutdown func() error, err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(lis)
	return srv.Close, nil
}
