package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/pkg/cli"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

// execute runs the order binary with args.
func execute(ctx context.Context, args ...string) error {
	return cli.Execute(ctx, newRoot(io.Discard), args, io.Discard, io.Discard)
}

func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if err := cli.Execute(t.Context(), newRoot(&errb), []string{"help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "projections") {
		t.Fatalf("order help = %v:\n%s", err, out.String())
	}
	out.Reset()
	if err := cli.Execute(t.Context(), newRoot(&errb), []string{"projections", "rebuild", "-h"}, &out, &errb); err != nil || !strings.Contains(errb.String(), "-read-dsn") {
		t.Fatalf("order projections rebuild -h = %v:\n%s", err, errb.String())
	}
	if err := execute(t.Context(), "-no-such-flag"); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
}

func TestProjectionsRebuild(t *testing.T) {
	srv := natstest.Start(t)
	dsn := filepath.Join(t.TempDir(), "orders.db")
	if err := execute(context.Background(), "projections", "rebuild", "-nats-url", srv.ClientURL(), "-read-dsn", dsn); err != nil {
		t.Fatalf("projections rebuild: %v", err)
	}
	if err := execute(context.Background(), "projections", "rebuild", "-nats-url", srv.ClientURL(), "-read-dsn", ""); err == nil {
		t.Fatal("rebuild without a read model succeeded")
	}
}

func TestServeNeedsAnIssuer(t *testing.T) {
	srv := natstest.Start(t)
	if err := execute(context.Background(), "-nats-url", srv.ClientURL(), "-oidc-issuer", ""); err == nil {
		t.Fatal("serving without an OIDC issuer succeeded")
	}
}
