// Command order runs the order service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list). "order projections rebuild"
// rebuilds the read models from the event store and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/order"
)

func main() { service.Main("order: ", run) }

func run(ctx context.Context, args []string) error {
	rebuild := len(args) >= 2 && args[0] == "projections" && args[1] == "rebuild"
	if rebuild {
		args = args[2:]
	}
	var (
		cfg          order.Config
		startCfg     service.Config
		natsURL      string
		natsFlags    natsauth.ClientFlags
		oidcIssuer   string
		oidcAudience string
	)
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	startCfg.RegisterFlags(fs)
	fs.StringVar(&natsURL, "nats-url", nats.DefaultURL, "NATS server with JetStream (event store, snapshots)")
	natsFlags.RegisterFlags(fs)
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL whose tokens identify callers (required to serve)")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: order [flags]\n       order projections rebuild [flags]\n\n")
		config.Usage(fs)()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}

	return startCfg.Run(ctx, "order", func(ctx context.Context, tel *telemetry.Telemetry) error {
		logger := tel.Logger()
		nc, err := natsFlags.Connect(natsURL, natsauth.Order, nats.MaxReconnects(-1))
		if err != nil {
			return err
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
		svc, err := order.New(ctx, cfg, order.Deps{Logger: logger, Verifier: v, NATS: nc})
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
