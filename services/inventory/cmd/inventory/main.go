// Command inventory runs the inventory service on its own, configured by flags or SHOP_*
// environment variables (run with -h for the list).
package main

import (
	"context"

	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/services/inventory"
)

func main() { service.Main("inventory: ", run) }

func run(ctx context.Context, args []string) error {
	var cfg inventory.Config
	return participant.Program{
		Name:      "inventory",
		OIDCUsage: "SetStock and ListStock require an admin token",
		Flags:     cfg.RegisterFlags,
		SharedDSN: func(dsn string) { cfg.DBDSN = dsn },
		New: func(ctx context.Context, d participant.Deps) (participant.Runner, error) {
			return inventory.New(ctx, cfg, inventory.Deps{Logger: d.Logger, Verifier: d.Verifier, NATS: d.NATS})
		},
	}.Run(ctx, args)
}
