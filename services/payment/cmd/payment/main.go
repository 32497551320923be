// Command payment runs the payment service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
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

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
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
		natsURL      string
		readDSN      string
		oidcIssuer   string
		oidcAudience string
		logLevel     slog.Level
	)
	fs := flag.NewFlagSet("payment", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
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

	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

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
