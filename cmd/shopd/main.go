// Command shopd runs the whole shop in one process: an embedded NATS JetStream server,
// the dev OIDC issuer and every service on its own port, wired through real gRPC and
// real NATS exactly as in a distributed deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
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

	if len(os.Args) > 1 && os.Args[1] == "token" {
		if err := runToken(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "shopd:", err)
			os.Exit(1)
		}
		return
	}

	if len(os.Args) > 1 && os.Args[1] == "audit" {
		if err := runAudit(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "shopd:", err)
			os.Exit(1)
		}
		return
	}

	if len(os.Args) > 1 && os.Args[1] == "nats-auth" {
		if err := runNATSAuth(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "shopd:", err)
			os.Exit(1)
		}
		return
	}

	if len(os.Args) > 2 && os.Args[1] == "projections" && os.Args[2] == "rebuild" {
		if err := runRebuild(ctx, os.Args[3:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "shopd:", err)
			os.Exit(1)
		}
		return
	}

	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "shopd:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shopd:", err)
		m.Close()
		os.Exit(1)
	}
	fmt.Fprintln(m.Stdout, "shopd: storefront:", m.StorefrontURL())
	fmt.Fprintln(m.Stdout, "shopd: ready —", m.Summary(), "— Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(m.Stdout, "shopd: stopping")
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "shopd:", err)
		os.Exit(1)
	}
}
