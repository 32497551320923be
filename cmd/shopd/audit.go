package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	"github.com/eventshop/eventshop/pkg/config"
)

// errViolations makes `shopd audit` exit non-zero when an invariant is broken.
var errViolations = errors.New("invariants violated")

// runAudit checks the money and stock invariants in the databases of a shopd data
// directory (or the DSNs given), prints every violation with its order or product,
// and returns errViolations when there is any.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shopd audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "data", "shopd data directory whose SQLite databases to audit")
	var src audit.Sources
	fs.StringVar(&src.Orders, "orders-dsn", "", "order read model (default <data-dir>/order-read.db)")
	fs.StringVar(&src.Payments, "payment-dsn", "", "payment database (default <data-dir>/payment.db)")
	fs.StringVar(&src.Inventory, "inventory-dsn", "", "inventory database (default <data-dir>/inventory.db)")
	fs.StringVar(&src.Shipping, "shipping-dsn", "", "shipping database (default <data-dir>/shipping.db)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shopd audit [-data-dir DIR] [-orders-dsn DSN] [-payment-dsn DSN] [-inventory-dsn DSN] [-shipping-dsn DSN]")
		fmt.Fprintln(stderr, "Checks a quiet shop: every order ended, money and stock balanced. Exits 1 on any violation.")
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	def := audit.DataDir(*dataDir)
	src.Orders = defaultString(src.Orders, "", def.Orders)
	src.Payments = defaultString(src.Payments, "", def.Payments)
	src.Inventory = defaultString(src.Inventory, "", def.Inventory)
	src.Shipping = defaultString(src.Shipping, "", def.Shipping)
	report, err := audit.Run(ctx, src)
	if err != nil {
		return err
	}
	report.Print(stdout)
	if !report.OK() {
		return fmt.Errorf("%w: %d", errViolations, len(report.Violations))
	}
	return nil
}

// defaultString returns override when v is still the default pkgDefault.
func defaultString(v, pkgDefault, override string) string {
	if v == "" || v == pkgDefault {
		return override
	}
	return v
}
