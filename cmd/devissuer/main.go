// Command devissuer runs the development OpenID Provider on its own (demo users alice,
// bob and admin, the storefront and shop-cli clients), for running the services as
// separate processes without a real identity provider.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "devissuer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("devissuer", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9400", "listen address")
	audience := fs.String("audience", "eventshop", "audience put in access tokens")
	keyFile := fs.String("key-file", "", "keep the signing key in this file (created 0600 on first start), so tokens survive a restart; empty: a new key per start")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	iss, err := devissuer.Start(ctx, devissuer.Config{Addr: *addr, Audience: *audience, KeyFile: *keyFile, Logger: slog.Default()})
	if err != nil {
		return err
	}
	fmt.Println("devissuer: serving", iss.URL())
	<-ctx.Done()
	return iss.Close()
}
