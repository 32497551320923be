package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/cmd/internal/audit"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/services/order"
)

// watchToEnd watches order id on client until the stream ends and returns the last
// order it sent.
func watchToEnd(ctx context.Context, t *testing.T, client orderv1.OrderServiceClient, id string) *orderv1.Order {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	stream, err := client.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
	if err != nil {
		t.Fatalf("WatchOrder %s: %v", id, err)
	}
	var last *orderv1.Order
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return last
		}
		if err != nil {
			t.Fatalf("WatchOrder %s: %v (last %v)", id, err, last.GetStatus())
		}
		last = resp.GetOrder()
	}
}

// Two order instances sharing one PostgreSQL read model split its projection: each
// projects the partitions it leases, under checkpoints of its own, and a watch on
// either instance follows any order to its end, whichever instance projects it
// (their projectors relay what they commit). When one instance stops, the other
// takes its partitions over and the orders placed after that complete too.
func TestTwoOrderInstancesSplitTheReadModel(t *testing.T) {
	pg := startPostgres(t)
	dsn := pg.dsn()
	const parts = 8
	s := startSagaShop(t, withFlags("-order-read-dsn", dsn, "-order-read-partitions", "8", "-inventory-seed-stock", "1000"))
	src := audit.DataDir(s.dataDir)
	src.Orders = dsn
	s.sources = &src
	before := s.stock()

	// A second order instance, as another replica would run: its own NATS
	// connection as the order identity, the same read model.
	var cfg order.Config
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-grpc-addr", "127.0.0.1:0", "-catalog-addr", s.Addr("catalog"), "-shipping-addr", s.Addr("shipping"),
		"-read-dsn", dsn, "-read-partitions", "8"}); err != nil {
		t.Fatal(err)
	}
	nc, err := s.ConnectNATS(natsauth.Order)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(context.Background(), auth.VerifierConfig{Issuer: s.IssuerURL()})
	if err != nil {
		t.Fatal(err)
	}
	second, err := order.New(context.Background(), cfg, order.Deps{Logger: slog.New(slog.DiscardHandler), Verifier: verifier, NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopSecond := context.WithCancel(context.Background())
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.Run(runCtx) }()
	t.Cleanup(func() { stopSecond(); <-secondDone })
	other := orderv1.NewOrderServiceClient(dial(t, second.Addr().String()))

	// Both instances hold leases before the orders come.
	owners := waitLeases(t, s, parts, 2)

	var placed []string
	for i := range 24 {
		id := s.place("tok_visa", 1)
		placed = append(placed, id)
		client := s.orders
		if i%2 == 1 {
			client = other
		}
		if got := watchToEnd(s.ctx, t, client, id); got.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
			t.Fatalf("order %s watched on instance %d ended %v", id, i%2+1, got.GetStatus())
		}
	}
	// Both instances projected some of those orders, and watches on each followed
	// orders the other projected.
	by := map[string]int{}
	for _, id := range placed {
		by[owners[eventstore.Partition("order-"+id, parts)]]++
	}
	if len(by) != 2 {
		t.Fatalf("24 orders fell to the partitions of %d instances (%v): the test shows too little", len(by), by)
	}

	// The second instance stops: the first takes all partitions and goes on.
	stopSecond()
	if err := <-secondDone; err != nil {
		t.Fatalf("second instance: %v", err)
	}
	secondDone <- nil
	for range 12 {
		id := s.place("tok_visa", 1)
		placed = append(placed, id)
		if got := watchToEnd(s.ctx, t, s.orders, id); got.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
			t.Fatalf("order %s after the takeover ended %v", id, got.GetStatus())
		}
	}
	s.awaitAllSold(placed, before)
}

// waitLeases waits until every one of the parts partitions is leased and the leases
// are held by members instances, and returns the owner of each.
func waitLeases(t *testing.T, s *sagaShop, parts, members int) map[int]string {
	t.Helper()
	js := s.operatorJetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, order.PartitionBucket)
	if err != nil {
		t.Fatal(err)
	}
	for {
		owners := map[int]string{}
		distinct := map[string]bool{}
		for p := range parts {
			if e, err := kv.Get(ctx, "leases."+strconv.Itoa(p)); err == nil {
				owners[p] = string(e.Value())
				distinct[string(e.Value())] = true
			}
		}
		if len(owners) == parts && len(distinct) == members {
			return owners
		}
		if ctx.Err() != nil {
			t.Fatalf("leases after 30 s: %v, want %d partitions held by %d instances", owners, parts, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// operatorJetStream is JetStream on the shop's server as the operator identity, for
// a test that looks at streams and buckets as a person on call would.
func (s *sagaShop) operatorJetStream() jetstream.JetStream {
	s.t.Helper()
	nc, err := s.ConnectNATS(natsauth.Operator)
	if err != nil {
		s.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return js
}
