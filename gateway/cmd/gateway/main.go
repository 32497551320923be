// Command gateway runs the HTTP API gateway and storefront on its own, configured by
// flags or SHOP_* environment variables (run with -h for the list).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/telemetry"
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
		cfg          gateway.Config
		telCfg       telemetry.Config
		oidcAudience string
		logLevel     slog.Level
		natsURL      string
		natsFlags    natsauth.ClientFlags
	)
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	telCfg.RegisterFlags(fs)
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience access tokens must carry")
	fs.StringVar(&natsURL, "nats-url", "", "NATS JetStream server that keeps storefront sessions (shared by every gateway instance, kept across restarts); empty keeps them in this process")
	natsFlags.RegisterFlags(fs)
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("gateway: %w", err)
	}
	if cfg.OIDCIssuer == "" {
		return errors.New("gateway: -oidc-issuer (SHOP_OIDC_ISSUER) is required to verify API tokens")
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	telCfg.ServiceName = "gateway"
	tel, err := telemetry.Setup(ctx, telCfg, telemetry.WithLogLevel(logLevel))
	if err != nil {
		return fmt.Errorf("gateway: telemetry: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		tel.Shutdown(sctx)
	}()
	logger := tel.Logger()
	slog.SetDefault(logger)

	v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: cfg.OIDCIssuer, Audience: oidcAudience})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	deps := gateway.Deps{Logger: logger, Verifier: v, Telemetry: tel}
	if natsURL != "" {
		as, err := natsFlags.Option(natsauth.Gateway)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		ns, err := natsembed.Start(ctx, natsembed.Config{URL: natsURL, Identity: as})
		if err != nil {
			return fmt.Errorf("gateway: nats: %w", err)
		}
		defer ns.Close()
		nc, err := ns.Connect(nats.Name(natsauth.Gateway), as)
		if err != nil {
			return fmt.Errorf("gateway: nats: %w", err)
		}
		defer nc.Close()
		if deps.JetStream, err = jetstream.New(nc); err != nil {
			return fmt.Errorf("gateway: nats: %w", err)
		}
	}
	gw, err := gateway.New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	return gw.Run(ctx)
}
