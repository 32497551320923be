// Command shopd runs the whole shop in one process: an embedded NATS JetStream server,
// the dev OIDC issuer and every service on its own port, wired through real gRPC and
// real NATS exactly as in a distributed deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/eventshop/eventshop/cmd/internal/shop"
	"github.com/eventshop/eventshop/pkg/cli"
	"github.com/eventshop/eventshop/pkg/config"
)

// Main is the shop program; package shop holds it so loadgen can run it too.
type Main = shop.Main

// NewMain returns a Main with the defaults of a laptop run.
func NewMain() *Main { return shop.NewMain() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// newRoot is shopd's command tree: the shop itself, and its tools.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	with := func(run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error { return run(ctx, args, stdout, stderr) }
	}
	root := cli.Command("shopd [flags]", "run the whole shop in one process",
		func(ctx context.Context, args []string) error { return runShop(ctx, args, stdout, stderr) })
	root.Long = "shopd runs the whole shop in one process: embedded NATS JetStream, the dev OIDC issuer,\n" +
		"every service on its own port and the gateway (shopd -h lists the flags).\n" +
		"shopd <command> -h lists a command's flags."
	root.AddCommand(
		cli.Command("token", "print an access token of a demo user from the dev issuer", with(runToken)),
		cli.Command("audit", "check a quiet shop's invariants (every order ended, money and stock balanced)", with(runAudit)),
		cli.Command("nats-auth", "make the services' NATS identities and the users block of a nats-server config", with(runNATSAuth)),
		cli.Group("projections", "read-model tools: projections rebuild",
			cli.Command("rebuild", "rebuild the order read models from the event store", with(runRebuild))),
		cli.Command("dlq", "list, show, replay or drop dead letters (messages no handler could process)", with(runDLQ)),
	)
	return root
}

// run is shopd with its arguments; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-help" || args[0] == "--help") {
		args = []string{"help"} // the commands; -h lists the shop's flags
	}
	return config.ExitStatus(stderr, "shopd: ", cli.Execute(ctx, newRoot(stdout, stderr), args, stdout, stderr))
}

// runShop runs the shop until ctx ends.
func runShop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := NewMain()
	m.Stdout, m.Stderr = stdout, stderr
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return config.UsageError{Err: err}
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	fmt.Fprintln(m.Stdout, "shopd: storefront:", m.StorefrontURL())
	fmt.Fprintln(m.Stdout, "shopd: ready —", m.Summary(), "— Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(m.Stdout, "shopd: stopping")
	return m.Close()
}
