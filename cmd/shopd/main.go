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
	"slices"
	"strings"
	"syscall"

	"github.com/eventshop/eventshop/cmd/internal/shop"
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

// subcommands are shopd's tools besides running the shop, by name.
var subcommands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}{
	{"token", "print an access token of a demo user from the dev issuer", runToken},
	{"audit", "check a quiet shop's invariants (every order ended, money and stock balanced)", runAudit},
	{"nats-auth", "make the services' NATS identities and the users block of a nats-server config", runNATSAuth},
	{"projections rebuild", "rebuild the order read models from the event store", runRebuild},
	{"dlq", "list, show, replay or drop dead letters (messages no handler could process)", runDLQ},
}

// usage lists what shopd does, for shopd help.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: shopd [flags]             run the whole shop in one process (shopd -h lists the flags)")
	fmt.Fprintln(w, "       shopd <command> [flags]   (shopd <command> -h lists its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-20s %s\n", "help", "print this")
}

// run is shopd with its arguments; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-help" || args[0] == "--help") {
		usage(stdout)
		return 0
	}
	for _, c := range subcommands {
		words := strings.Fields(c.name)
		if len(args) < len(words) || !slices.Equal(args[:len(words)], words) {
			continue
		}
		if err := c.run(ctx, args[len(words):], stdout, stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(stderr, "shopd:", err)
			return 1
		}
		return 0
	}

	m := NewMain()
	m.Stdout, m.Stderr = stdout, stderr
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "shopd:", err)
		return 2
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "shopd:", err)
		m.Close()
		return 1
	}
	fmt.Fprintln(m.Stdout, "shopd: storefront:", m.StorefrontURL())
	fmt.Fprintln(m.Stdout, "shopd: ready —", m.Summary(), "— Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(m.Stdout, "shopd: stopping")
	if err := m.Close(); err != nil {
		fmt.Fprintln(stderr, "shopd:", err)
		return 1
	}
	return 0
}
