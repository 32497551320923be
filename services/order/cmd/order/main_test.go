package main

import (
	"context"
	"errors"
	"flag"
	"path/filepath"
	"testing"

	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

func TestHelp(t *testing.T) {
	if err := run(t.Context(), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v, want flag.ErrHelp", err)
	}
}

func TestProjectionsRebuild(t *testing.T) {
	srv := natstest.Start(t)
	dsn := filepath.Join(t.TempDir(), "orders.db")
	if err := run(context.Background(), []string{"projections", "rebuild", "-nats-url", srv.ClientURL(), "-read-dsn", dsn}); err != nil {
		t.Fatalf("projections rebuild: %v", err)
	}
	if err := run(context.Background(), []string{"projections", "rebuild", "-nats-url", srv.ClientURL(), "-read-dsn", ""}); err == nil {
		t.Fatal("rebuild without a read model succeeded")
	}
}

func TestServeNeedsAnIssuer(t *testing.T) {
	srv := natstest.Start(t)
	if err := run(context.Background(), []string{"-nats-url", srv.ClientURL(), "-oidc-issuer", ""}); err == nil {
		t.Fatal("serving without an OIDC issuer succeeded")
	}
}
