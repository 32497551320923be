// Command order runs the order service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list). "order projections rebuild"
// rebuilds the read models from the event store and exits; "order help" lists both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/cli"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/order"
)

func main() {
	service.Main("order: ", func(ctx context.Context, args []string) error {
		return cli.Execute(ctx, newRoot(os.Stderr), args, os.Stdout, os.Stderr)
	})
}

// newRoot is the order binary's command tree: the service, and its rebuild. Flag
// usage goes to stderr.
func newRoot(stderr io.Writer) *cobra.Command {
	root := cli.Command("order [flags]", "run the order service",
		func(ctx context.Context, args []string) error { return run(ctx, args, false, stderr) })
	root.AddCommand(cli.Group("projections", "read-model tools: projections rebuild",
		cli.Command("rebuild [flags]", "rebuild the read models from the event store and exit",
			func(ctx context.Context, args []string) error { return run(ctx, args, true, stderr) })))
	return root
}

// run serves the order service, or with rebuild rebuilds its read models; both take
// the same flags.
func run(ctx context.Context, args []string, rebuild bool, stderr io.Writer) error {
	var (
		cfg          order.Config
		startCfg     service.Config
		natsURL      string
		natsFlags    natsauth.ClientFlags
		oidcIssuer   string
		oidcAudience string
	)
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
