package main

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// A token issued before shopd stops (or crashes) still works after it starts again
// on the same data dir: the dev issuer keeps its signing key there. Before, every
// start made a new key and signed every client out.
func TestTokensSurviveARestart(t *testing.T) {
	issuerAddr := freeAddr(t)
	dir := t.TempDir()
	run := func() *Main {
		t.Helper()
		m := NewMain()
		var out bytes.Buffer
		m.Stdout, m.Stderr = &out, &out
		if err := m.ParseFlags(shopArgs(dir, issuerAddr)); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		return m
	}
	first := run()
	token, err := first.Issuer().Login(t.Context(), "alice", "alice-password")
	if err != nil {
		first.Close()
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := run()
	defer second.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	if _, err := orderv1.NewOrderServiceClient(dial(t, second.Addr("order"))).ListOrders(ctx, &orderv1.ListOrdersRequest{}); err != nil {
		t.Fatalf("token from before the restart: %v", err)
	}
}
