package kvstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/services/cart/app"
	"github.com/eventshop/eventshop/services/cart/domain"
)

var limits = domain.Limits{MaxLines: 10, MaxQuantity: 100}

func newStore(t testing.TB, ttl time.Duration) (*Store, jetstream.JetStream) {
	t.Helper()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), js, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func TestKVStoreBucketIsIdempotentWithTTL(t *testing.T) {
	s, js := newStore(t, time.Hour)
	if _, err := New(t.Context(), js, time.Hour); err != nil {
		t.Fatalf("second create: %v", err)
	}
	st, err := s.kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != time.Hour || st.Bucket() != Bucket {
		t.Fatalf("bucket %s ttl %v", st.Bucket(), st.TTL())
	}
}

func TestKVStoreSingleReplicaByDefault(t *testing.T) {
	_, js := newStore(t, 0)
	if _, err := New(t.Context(), js, 0, WithReplicas(0)); err != nil {
		t.Fatalf("WithReplicas(0): %v", err)
	}
	st, err := js.Stream(t.Context(), "KV_"+Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Replicas; got != 1 {
		t.Fatalf("bucket %s has %d replicas, want 1", Bucket, got)
	}
}

func TestKVStoreRoundTripAsProtobuf(t *testing.T) {
	s, _ := newStore(t, 0)
	ctx := t.Context()
	user := "user|with odd/chars@example.com"
	c, err := s.Update(ctx, user, func(c *domain.Cart) error {
		return c.Add("mug", 2, limits, time.Now())
	})
	if err != nil || c.Quantity("mug") != 2 {
		t.Fatalf("Update: %v, %v", c, err)
	}
	got, err := s.Get(ctx, user)
	if err != nil || got.Quantity("mug") != 2 || got.UserID() != user || got.UpdateTime().IsZero() {
		t.Fatalf("Get: %+v, %v", got, err)
	}

	entry, err := s.kv.Get(ctx, key(user))
	if err != nil {
		t.Fatal(err)
	}
	var pb cartv1.Cart
	if err := proto.Unmarshal(entry.Value(), &pb); err != nil {
		t.Fatal(err)
	}
	if pb.GetUserId() != user || len(pb.GetItems()) != 1 || pb.GetItems()[0].GetProductId() != "mug" || pb.GetItems()[0].GetUnitPrice() != nil {
		t.Fatalf("stored value = %v", &pb)
	}
}

func TestKVStoreUpdateErrorWritesNothing(t *testing.T) {
	s, _ := newStore(t, 0)
	ctx := t.Context()
	boom := errors.New("boom")
	if _, err := s.Update(ctx, "alice", func(*domain.Cart) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	// A no-op change writes nothing either.
	if _, err := s.Update(ctx, "alice", func(c *domain.Cart) error { c.Remove("absent", time.Now()); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.kv.Get(ctx, key("alice")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("key written: %v", err)
	}
}

func TestKVStoreGivesUpWithConflict(t *testing.T) {
	s, _ := newStore(t, 0)
	s.maxAttempts = 3
	ctx := t.Context()
	// Another writer changes the cart between every read and write of this one.
	other := 0
	_, err := s.Update(ctx, "alice", func(c *domain.Cart) error {
		other++
		if _, err := s.Update(context.WithoutCancel(ctx), "alice", func(c *domain.Cart) error {
			return c.Add("rival", 1, limits, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		return c.Add("mine", 1, limits, time.Now())
	})
	if !errors.Is(err, app.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if other != 3 {
		t.Errorf("fn ran %d times, want 3", other)
	}
	got, _ := s.Get(ctx, "alice")
	if got.Quantity("mine") != 0 || got.Quantity("rival") != 3 {
		t.Fatalf("cart = %v", got.Items())
	}
}

// BenchmarkKVStoreUpdate measures one read-modify-write of a cart on an embedded
// JetStream server: each goroutine on its own cart, then all on one cart.
func BenchmarkKVStoreUpdate(b *testing.B) {
	s, _ := newStore(b, 0)
	q := func(c *domain.Cart) error {
		if c.Quantity("mug") >= limits.MaxQuantity {
			c.Remove("mug", time.Now())
			return nil
		}
		return c.Add("mug", 1, limits, time.Now())
	}
	b.Run("own-cart", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			user := fmt.Sprintf("user-%d", n.Add(1))
			for pb.Next() {
				if _, err := s.Update(b.Context(), user, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("shared-cart", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Update(b.Context(), "shared", q); err != nil && !errors.Is(err, app.ErrConflict) {
					b.Fatal(err)
				}
			}
		})
	})
}
