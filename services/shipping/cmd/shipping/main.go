// Command shipping runs the shipping service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
package main

import (
	"context"

	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/services/shipping"
)

func main() { service.Main("shipping: ", run) }

func run(ctx context.Context, args []string) error {
	var cfg shipping.Config
	return participant.Program{
		Name:      "shipping",
		OIDCUsage: "GetShipment requires a token when set",
		Flags:     cfg.RegisterFlags,
		SharedDSN: func(dsn string) { cfg.DBDSN = dsn },
		New: func(ctx context.Context, d participant.Deps) (participant.Runner, error) {
			return shipping.New(ctx, cfg, shipping.Deps{Logger: d.Logger, Verifier: d.Verifier, NATS: d.NATS})
		},
	}.Run(ctx, args)
}
