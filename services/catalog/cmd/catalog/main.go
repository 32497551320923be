// Command catalog runs the product catalog service on its own, configured by flags
// or SHOP_* environment variables (run with -h for the list).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/catalog"
)

func main() { service.Main("", run) }

func run(ctx context.Context, args []string) error {
	var (
		cfg          catalog.Config
		startCfg     service.Config
		oidcIssuer   string
		oidcAudience string
	)
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	startCfg.RegisterFlags(fs)
	fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OIDC issuer URL; tokens are verified when set (catalog RPCs never require one)")
	fs.StringVar(&oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("catalog: %w", err)
	}

	return startCfg.Run(ctx, "catalog", func(ctx context.Context, tel *telemetry.Telemetry) error {
		logger := tel.Logger()
		deps := catalog.Deps{Logger: logger}
		if oidcIssuer != "" {
			v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
			if err != nil {
				return fmt.Errorf("catalog: %w", err)
			}
			deps.Verifier = v
		}
		svc, err := catalog.New(ctx, cfg, deps)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
