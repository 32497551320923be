// Command cart runs the cart service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
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
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/cart"
)

func main() { service.Main("", run) }

func run(ctx context.Context, args []string) error {
	var (
		cfg          cart.Config
		startCfg     service.Config
		natsURL      string
		natsStore    string
		natsFlags    natsauth.ClientFlags
		oidcIssuer   string
		oidcAudience string
	)
	fs := flag.NewFlagSet("cart", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	startCfg.RegisterFlags(fs)
	fs.StringVar(&natsURL, "nats-url", "", "NATS server URL; empty starts an embedded JetStream server")
	fs.StringVar(&natsStore, "nats-store-dir", "./data/nats-cart", "JetStream store directory of the embedded server (when -nats-url is empty)")
	natsFlags.RegisterFlags(fs)
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL whose tokens identify users (required)")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
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

	return startCfg.Run(ctx, "cart", func(ctx context.Context, tel *telemetry.Telemetry) error {
		logger := tel.Logger()
		verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
		if err != nil {
			return fmt.Errorf("cart: %w", err)
		}
		as, err := natsFlags.Option(natsauth.Cart) // nil: the cart's own embedded server, or an open one
		if err != nil {
			return fmt.Errorf("cart: %w", err)
		}
		ns, err := natsembed.Start(ctx, natsembed.Config{URL: natsURL, StoreDir: natsStore, Identity: as})
		if err != nil {
			return fmt.Errorf("cart: nats: %w", err)
		}
		defer ns.Close()
		nc, err := ns.Connect(nats.Name(natsauth.Cart), as)
		if err != nil {
			return fmt.Errorf("cart: nats: %w", err)
		}
		defer nc.Close()

		svc, err := cart.New(ctx, cfg, cart.Deps{Logger: logger, Verifier: verifier, NATS: nc})
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
