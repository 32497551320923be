package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// TestProjectionsRebuildWhileServing rebuilds the running shop's order read model
// from its event store and checks the rows come back identical and still serve.
func TestProjectionsRebuildWhileServing(t *testing.T) {
	s := startSagaShop(t)
	done := s.awaitStatus(s.place("tok_visa", 1), orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	declined := s.awaitStatus(s.place("tok_chargeDeclined", 1), orderv1.OrderStatus_ORDER_STATUS_CANCELLED)

	var out, errOut bytes.Buffer
	args := []string{"-data-dir", s.dataDir, "-nats-url", s.NATSClientURL()}
	if err := runRebuild(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "rebuilt") || !strings.Contains(errOut.String(), "rebuilding order read models") {
		t.Fatalf("no progress or result shown:\n%s\n%s", out.String(), errOut.String())
	}
	for _, want := range []*orderv1.Order{done, declined} {
		got, err := s.orders.GetOrder(s.ctx, &orderv1.GetOrderRequest{OrderId: want.GetId()})
		if err != nil {
			t.Fatalf("GetOrder after rebuild: %v", err)
		}
		if !proto.Equal(got.GetOrder(), want) {
			t.Fatalf("order %s differs after rebuild:\n got %v\nwant %v", want.GetId(), got.GetOrder(), want)
		}
	}
	// The live projector keeps going on the swapped tables.
	next := s.awaitStatus(s.place("tok_visa", 1), orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if next.GetId() == "" {
		t.Fatal("no order after rebuild")
	}
	s.audit()
}
