// Command order runs the order service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list). "order projections rebuild"
// rebuilds the read models from the event store and exits.
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
	"github.com/eventshop/eventshop/services/order"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "order:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	rebuild := len(args) >= 2 && args[0] == "projections" && args[1] == "rebuild"
	if rebuild {
		args = args[2:]
	}
	var (
		cfg          order.Config
		telCfg       telemetry.Config
		metricsAddr  string
		natsURL      string
		oidcIssuer   string
		oidcAudience string
		logLevel     slog.Level
	)
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	telCfg.RegisterFlags(fs)
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 0.0.0.0:9464); empty serves none")
	fs.StringVar(&natsURL, "nats-url", nats.DefaultURL, "NATS server with JetStream (event store, snapshots)")
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL whose tokens identify callers (required to serve)")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: order [flags]\n       order projections rebuild [flags]\n\n")
		config.Usage(fs)()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	telCfg.ServiceName = "order"
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

	nc, err := nats.Connect(natsURL, nats.Name("order"))
	if err != nil {
		return fmt.Errorf("nats %s: %w", natsURL, err)
	}
	defer nc.Drain()

	if rebuild {
		return order.RebuildProjections(ctx, cfg, order.Deps{Logger: logger, NATS: nc})
	}

	if oidcIssuer == "" {
		return errors.New("-oidc-issuer (SHOP_OIDC_ISSUER) is required: every order RPC needs a verified caller")
	}
	v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
	if err != nil {
		return err
	}
	svc, err := order.New(cfg, order.Deps{Logger: logger, Verifier: v, NATS: nc})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
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
