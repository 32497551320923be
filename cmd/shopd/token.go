package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/config"
)

// runToken prints an access token for a demo user of a running shopd's dev issuer,
// obtained through the real authorization-code + PKCE flow, for grpcurl and curl.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shopd token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "http://127.0.0.1:9400", "URL of the running dev issuer")
	scopes := fs.String("scopes", "", "space-separated scopes to request (default: all the client may have)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shopd token [-issuer URL] [-scopes \"a b\"] USER [PASSWORD]")
		fmt.Fprintln(stderr, "PASSWORD defaults to USER-password, as for the demo users.")
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return fmt.Errorf("token: want USER [PASSWORD], got %d arguments", fs.NArg())
	}
	user := fs.Arg(0)
	password := user + "-password"
	if fs.NArg() == 2 {
		password = fs.Arg(1)
	}
	var client devissuer.Client
	for _, c := range devissuer.DefaultClients() {
		if c.ID == "storefront" {
			client = c
		}
	}
	tok, err := devissuer.LoginAt(ctx, *issuer, client, user, password, strings.Fields(*scopes)...)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
