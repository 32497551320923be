// Command payment runs the payment service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
package main

import (
	"context"

	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/services/payment"
)

func main() { service.Main("payment: ", run) }

func run(ctx context.Context, args []string) error {
	var cfg payment.Config
	return participant.Program{
		Name:      "payment",
		OIDCUsage: "the queries require a token when set",
		Flags:     cfg.RegisterFlags,
		SharedDSN: func(dsn string) { cfg.DBDSN = dsn },
		New: func(ctx context.Context, d participant.Deps) (participant.Runner, error) {
			return payment.New(ctx, cfg, payment.Deps{Logger: d.Logger, Verifier: d.Verifier, NATS: d.NATS})
		},
	}.Run(ctx, args)
}
