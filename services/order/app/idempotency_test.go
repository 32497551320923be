package app

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

func keyRepo(t *testing.T) (*Repository, eventstore.Store) {
	t.Helper()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.NewJetStream(js)
	return NewRepository(store), store
}

// A guard is written as the protobuf message, typed by its full name, and a second
// claim of the same key gets the first order id.
func TestKeyGuardIsProtobuf(t *testing.T) {
	if got := string((&orderv1.IdempotencyKeyClaimed{}).ProtoReflect().Descriptor().FullName()); got != KeyClaimedType {
		t.Fatalf("KeyClaimedType = %s, the message is %s", KeyClaimedType, got)
	}
	repo, store := keyRepo(t)
	ctx := context.Background()
	if id, err := repo.claimKey(ctx, "alice", "k1", "order-1"); err != nil || id != "order-1" {
		t.Fatalf("claimKey = %s, %v", id, err)
	}
	evs, err := store.ReadStream(ctx, keyStream("alice", "k1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != KeyClaimedType {
		t.Fatalf("guard stream = %v; want one %s", evs, KeyClaimedType)
	}
	var m orderv1.IdempotencyKeyClaimed
	if err := proto.Unmarshal(evs[0].Data, &m); err != nil || m.GetOrderId() != "order-1" {
		t.Fatalf("guard payload = %v, %v; want order-1", &m, err)
	}
	if id, err := repo.claimKey(ctx, "alice", "k1", "order-2"); err != nil || id != "order-1" {
		t.Fatalf("second claimKey = %s, %v; want the first order", id, err)
	}
	if id, ok, err := repo.lookupKey(ctx, "alice", "k1"); err != nil || !ok || id != "order-1" {
		t.Fatalf("lookupKey = %s, %v, %v", id, ok, err)
	}
	if _, ok, err := repo.lookupKey(ctx, "bob", "k1"); err != nil || ok {
		t.Fatalf("lookupKey of another user = %v, %v; want unbound", ok, err)
	}
}

// Guards stored before the protobuf message existed hold the raw order id: they
// still bind their key.
func TestKeyGuardReadsRawForm(t *testing.T) {
	repo, store := keyRepo(t)
	ctx := context.Background()
	raw := eventstore.Event{ID: "0194d6c2-5b1e-7c3a-9f00-000000000001", Type: KeyClaimedRawType, Data: []byte("order-old"),
		Metadata: map[string]string{MetaSchemaVersion: "1"}}
	if _, err := store.Append(ctx, keyStream("alice", "k1"), eventstore.NoStream, raw); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := repo.lookupKey(ctx, "alice", "k1"); err != nil || !ok || id != "order-old" {
		t.Fatalf("lookupKey = %s, %v, %v; want order-old", id, ok, err)
	}
	if id, err := repo.claimKey(ctx, "alice", "k1", "order-new"); err != nil || id != "order-old" {
		t.Fatalf("claimKey = %s, %v; want the raw guard's order-old", id, err)
	}

	bad := eventstore.Event{ID: "0194d6c2-5b1e-7c3a-9f00-000000000002", Type: "eventshop.order.v1.OrderPlaced", Data: []byte("x")}
	if _, err := store.Append(ctx, keyStream("alice", "k2"), eventstore.NoStream, bad); err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.lookupKey(ctx, "alice", "k2"); err == nil {
		t.Fatal("lookupKey accepted a guard stream of another event type")
	}
}
