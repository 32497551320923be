package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/natsembed"
	"github.com/eventshop/eventshop/services/order"
)

// runRebuild replays the order event category into fresh read-model tables and swaps
// them in. Against a running shopd (-nats-url) the old tables keep answering queries
// until the swap; without -nats-url it opens the data directory's embedded NATS store
// itself, which needs shopd to be stopped.
func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shopd projections rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "data", "shopd data directory")
	natsURL := fs.String("nats-url", "", "NATS of a running shop (e.g. nats://127.0.0.1:4223); empty opens <data-dir>/nats while shopd is stopped")
	idsDir := fs.String("nats-identities", "", "directory of the shop's NATS identities; the operator's is used (default <data-dir>/nats-identities)")
	readDSN := fs.String("read-dsn", "", "order read-model database (default <data-dir>/order-read.db)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shopd projections rebuild [-data-dir DIR] [-nats-url URL] [-read-dsn DSN]")
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if *idsDir == "" {
		*idsDir = filepath.Join(*dataDir, "nats-identities")
	}
	ids, err := natsauth.Ensure(*idsDir)
	if err != nil {
		return err
	}
	op, err := ids.Option(natsauth.Operator)
	if err != nil {
		return err
	}
	srv, err := natsembed.Start(ctx, natsembed.Config{URL: *natsURL, StoreDir: filepath.Join(*dataDir, "nats"),
		Users: ids.Users(), Identity: op, Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	nc, err := srv.Connect(nats.Name("shopd projections rebuild"), op)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()

	var cfg order.Config
	cfg.RegisterFlags(flag.NewFlagSet("order", flag.ContinueOnError)) // defaults
	cfg.ReadDSN = *readDSN
	if cfg.ReadDSN == "" {
		cfg.ReadDSN = filepath.Join(*dataDir, "order-read.db")
	}
	if err := order.RebuildProjections(ctx, cfg, order.Deps{Logger: logger, NATS: nc}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "order read models rebuilt in", cfg.ReadDSN)
	return nil
}
