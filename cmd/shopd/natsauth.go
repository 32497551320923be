package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
)

// runNATSAuth creates the services' NATS identities (kept if they exist) and writes
// the nats-server users block for them, for a NATS server run on its own (split mode,
// Kubernetes). shopd's embedded server needs neither: it does the same at start.
func runNATSAuth(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shopd nats-auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", filepath.Join("data", "nats-identities"), "directory of the identities (one <name>.nk seed each, mode 0600); missing ones are created")
	out := fs.String("config", "", "where to write the nats-server users block (default <dir>/auth.conf); include it from the server's configuration")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shopd nats-auth [-dir DIR] [-config FILE]")
		fmt.Fprintln(stderr, "Creates a NATS identity per service and the server configuration that admits them with their permissions.")
		fmt.Fprintln(stderr, "To rotate one, delete its .nk file, run this again, reload the server and restart that service.")
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	ids, err := natsauth.Ensure(*dir)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(*dir, "auth.conf")
	}
	if err := os.WriteFile(*out, []byte(ids.ServerConfig()), 0o600); err != nil {
		return err
	}
	for _, name := range natsauth.Names {
		fmt.Fprintf(stdout, "%-9s %s  %s\n", name, ids.PublicKey(name), ids.SeedFile(name))
	}
	fmt.Fprintln(stdout, "server users:", *out)
	return nil
}
