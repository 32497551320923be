// Command gateway runs the HTTP API gateway and storefront on its own, configured by
// flags or SHOP_* environment variables (run with -h for the list).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
)

func main() { service.Main("", run) }

func run(ctx context.Context, args []string) error {
	var (
		cfg          gateway.Config
		startCfg     service.Config
		oidcAudience string
		natsURL      string
		natsFlags    natsauth.ClientFlags
	)
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	startCfg.RegisterFlags(fs)
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience access tokens must carry")
	fs.StringVar(&natsURL, "nats-url", "", "NATS JetStream server that keeps storefront sessions (shared by every gateway instance, kept across restarts); empty keeps them in this process")
	natsFlags.RegisterFlags(fs)
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

	return startCfg.Run(ctx, "gateway", func(ctx context.Context, tel *telemetry.Telemetry) error {
		v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: cfg.OIDCIssuer, Audience: oidcAudience})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		deps := gateway.Deps{Logger: tel.Logger(), Verifier: v, Telemetry: tel}
		if natsURL != "" {
			nc, err := natsFlags.Connect(natsURL, natsauth.Gateway, nats.MaxReconnects(-1))
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			defer nc.Drain()
			if deps.JetStream, err = jetstream.New(nc); err != nil {
				return fmt.Errorf("gateway: nats: %w", err)
			}
		}
		gw, err := gateway.New(ctx, cfg, deps)
		if err != nil {
			return err
		}
		return gw.Run(ctx)
	})
}
