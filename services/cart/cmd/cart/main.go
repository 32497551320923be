// Command cart runs the cart service on its own, configured by flags or SHOP_*
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

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/cart"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		cfg          cart.Config
		telCfg       telemetry.Config
		metricsAddr  string
		natsURL      string
		natsStore    string
		oidcIssuer   string
		oidcAudience string
		logLevel     slog.Level
	)
	fs := flag.NewFlagSet("cart", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	telCfg.RegisterFlags(fs)
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 0.0.0.0:9464); empty serves none")
	fs.StringVar(&natsURL, "nats-url", "", "NATS server URL; empty starts an embedded JetStream server")
	fs.StringVar(&natsStore, "nats-store-dir", "./data/nats-cart", "JetStream store directory of the embedded server (when -nats-url is empty)")
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL whose tokens identify users (required)")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("cart: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("cart: config: %w", err)
	}
	if oidcIssuer == "" {
		return errors.New("cart: -oidc-issuer (SHOP_OIDC_ISSUER) is required: carts belong to verified users")
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	telCfg.ServiceName = "cart"
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

	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
	if err != nil {
		return fmt.Errorf("cart: %w", err)
	}
	ns, err := natsembed.Start(ctx, natsembed.Config{URL: natsURL, StoreDir: natsStore})
	if err != nil {
		return fmt.Errorf("cart: nats: %w", err)
	}
	defer ns.Close()
	nc, err := ns.Connect()
	if err != nil {
		return fmt.Errorf("cart: nats: %w", err)
	}
	defer nc.Close()

	svc, err := cart.New(cfg, cart.Deps{Logger: logger, Verifier: verifier, NATS: nc})
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
