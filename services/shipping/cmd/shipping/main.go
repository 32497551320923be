// Command shipping runs the shipping service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/services/shipping"
)

func main() { service.Main("shipping: ", run) }

func run(ctx context.Context, args []string) error {
	var (
		cfg          shipping.Config
		startCfg     service.Config
		natsURL      string
		readDSN      string
		oidcIssuer   string
		oidcAudience string
	)
	fs := flag.NewFlagSet("shipping", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	startCfg.RegisterFlags(fs)
	fs.StringVar(&natsURL, "nats-url", nats.DefaultURL, "NATS JetStream URL")
	fs.StringVar(&readDSN, "read-dsn", "", "database shared by the services (e.g. postgres://...); used when -db-dsn is not given")
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL; GetShipment requires a token when set")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if readDSN != "" && !given(fs, "db-dsn") {
		cfg.DBDSN = readDSN
	}

	return startCfg.Run(ctx, "shipping", func(ctx context.Context, logger *slog.Logger) error {
		nc, err := nats.Connect(natsURL, nats.Name("shipping"), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("nats connect: %w", err)
		}
		defer nc.Drain()

		deps := shipping.Deps{Logger: logger, NATS: nc}
		if oidcIssuer != "" {
			v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
			if err != nil {
				return err
			}
			deps.Verifier = v
		}
		svc, err := shipping.New(cfg, deps)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}

// given reports whether the flag was set, on the command line or from its variable.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
