// Command catalog runs the product catalog service on its own, configured by flags
// or SHOP_* environment variables (run with -h for the list).
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

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/services/catalog"
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
		cfg          catalog.Config
		oidcIssuer   string
		oidcAudience string
		logLevel     slog.Level
	)
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL; tokens are verified when set (catalog RPCs never require one)")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("catalog: %w", err)
	}

	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	deps := catalog.Deps{Logger: logger}
	if oidcIssuer != "" {
		v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		deps.Verifier = v
	}
	svc, err := catalog.New(cfg, deps)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
