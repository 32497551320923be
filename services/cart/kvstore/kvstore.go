// Package kvstore keeps carts in a NATS JetStream key-value bucket, one key per
// user, updated with compare-and-set.
package kvstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/cart/app"
	"github.com/eventshop/eventshop/services/cart/domain"
)

// Bucket is the key-value bucket holding one entry per cart.
const Bucket = "carts"

// DefaultMaxAttempts bounds the read-modify-write attempts of one Update.
const DefaultMaxAttempts = 10

// Store keeps carts in a JetStream key-value bucket, one key per user, as
// cartv1.Cart protobuf values (user id, items, update time; never prices). Updates
// are compare-and-set on the key's revision, so concurrent writers never lose a line.
type Store struct {
	kv          jetstream.KeyValue
	maxAttempts int
}

var _ app.Store = (*Store)(nil)

// Option tunes New.
type Option func(*jetstream.KeyValueConfig)

// WithReplicas sets the bucket's replica count: 1 on a single server (the default),
// 3 on a cluster. Zero or less keeps the default.
func WithReplicas(n int) Option {
	return func(c *jetstream.KeyValueConfig) {
		if n > 0 {
			c.Replicas = n
		}
	}
}

// New creates the bucket if needed, or updates its settings, and returns a
// store over it. ttl is how long a cart lives after its last change, so abandoned
// carts expire; zero keeps carts forever. It returns the JetStream error if the
// bucket cannot be created or updated.
func New(ctx context.Context, js jetstream.JetStream, ttl time.Duration, opts ...Option) (*Store, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "shopping carts, one key per user",
		History:     1,
		TTL:         ttl,
		Replicas:    1,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	kv, err := messaging.DeclareKeyValue(ctx, js, "cart store: bucket "+Bucket, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, maxAttempts: DefaultMaxAttempts}, nil
}

// key maps a user id (any string the issuer chose) onto the bucket's key alphabet.
func key(userID string) string {
	return "u." + base64.RawURLEncoding.EncodeToString([]byte(userID))
}

// Get returns the user's cart, an empty one if none is stored. It returns the
// JetStream error, or one for a stored value that does not decode.
func (s *Store) Get(ctx context.Context, userID string) (*domain.Cart, error) {
	cart, _, err := s.load(ctx, userID)
	return cart, err
}

// load returns the cart and its revision; revision 0 means no cart is stored.
func (s *Store) load(ctx context.Context, userID string) (*domain.Cart, uint64, error) {
	entry, err := s.kv.Get(ctx, key(userID))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return domain.New(userID), 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("cart store: get: %w", err)
	}
	var pb cartv1.Cart
	if err := proto.Unmarshal(entry.Value(), &pb); err != nil {
		return nil, 0, fmt.Errorf("cart store: decode cart of revision %d: %w", entry.Revision(), err)
	}
	items := make([]domain.Item, 0, len(pb.GetItems()))
	for _, it := range pb.GetItems() {
		items = append(items, domain.Item{ProductID: it.GetProductId(), Quantity: it.GetQuantity()})
	}
	var updated time.Time
	if pb.GetUpdateTime() != nil {
		updated = pb.GetUpdateTime().AsTime()
	}
	return domain.Rehydrate(userID, items, updated), entry.Revision(), nil
}

// Update reads the cart with its revision, applies fn and writes the result only if
// the revision is unchanged, retrying with a short random backoff when another
// writer got there first. If fn changes nothing, nothing is written. It returns
// fn's error (nothing written), app.ErrConflict after DefaultMaxAttempts lost races,
// ctx's error, or the JetStream error.
func (s *Store) Update(ctx context.Context, userID string, fn func(*domain.Cart) error) (*domain.Cart, error) {
	k := key(userID)
	// Racing writers pause a short random time, growing with each lost race, so
	// they spread out instead of colliding again in lockstep.
	pauses := resilience.ContentionBackoff()
	for attempt := range s.maxAttempts {
		if attempt > 0 {
			if err := pauses.Wait(ctx); err != nil {
				return nil, err
			}
		}
		cart, rev, err := s.load(ctx, userID)
		if err != nil {
			return nil, err
		}
		before := cart.UpdateTime()
		if err := fn(cart); err != nil {
			return nil, err
		}
		if cart.UpdateTime().Equal(before) {
			return cart, nil
		}
		value, err := proto.Marshal(toProto(cart))
		if err != nil {
			return nil, fmt.Errorf("cart store: encode: %w", err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, k, value)
		} else {
			_, err = s.kv.Update(ctx, k, value, rev)
		}
		switch {
		case err == nil:
			return cart, nil
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue
		default:
			return nil, fmt.Errorf("cart store: write: %w", err)
		}
	}
	return nil, fmt.Errorf("cart store: %d attempts lost to concurrent writers: %w", s.maxAttempts, app.ErrConflict)
}

func toProto(c *domain.Cart) *cartv1.Cart {
	items := c.Items()
	pb := &cartv1.Cart{UserId: c.UserID(), Items: make([]*cartv1.CartItem, len(items))}
	for i, it := range items {
		pb.Items[i] = &cartv1.CartItem{ProductId: it.ProductID, Quantity: it.Quantity}
	}
	if t := c.UpdateTime(); !t.IsZero() {
		pb.UpdateTime = timestamppb.New(t)
	}
	return pb
}
