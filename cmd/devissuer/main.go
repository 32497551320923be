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
	"net/url"
	"os"
	"os/signal"
	"strings"
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
	var redirects []string
	fs.Func("storefront-redirect", "another OAuth redirect URI of the storefront client (a gateway elsewhere than :8080, e.g. http://127.0.0.1:8090/auth/callback); repeat or separate with commas", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return fmt.Errorf("%q is not an http(s) URL", u)
			}
			redirects = append(redirects, p.String())
		}
		return nil
	})
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	clients := devissuer.DefaultClients()
	for i := range clients {
		if clients[i].ID == devissuer.StorefrontClientID {
			clients[i].RedirectURIs = append(clients[i].RedirectURIs, redirects...)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	iss, err := devissuer.Start(ctx, devissuer.Config{Addr: *addr, Audience: *audience, KeyFile: *keyFile, Clients: clients, Logger: slog.Default()})
	if err != nil {
		return err
	}
	fmt.Println("devissuer: serving", iss.URL())
	<-ctx.Done()
	return iss.Close()
}
