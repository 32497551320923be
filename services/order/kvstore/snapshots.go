// Package kvstore keeps the order service's aggregate snapshots and its
// followers' checkpoints in NATS JetStream key-value buckets.
package kvstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/services/order/app"
)

// SnapshotBucket is the NATS KV bucket holding one snapshot per order, keyed by
// order id. It keeps only the latest value per key: an older snapshot is never
// needed, because the events after it are always read from the event store.
const SnapshotBucket = "order_snapshots"

// Snapshots stores order snapshots in a NATS KV bucket.
type Snapshots struct {
	kv jetstream.KeyValue
}

var _ app.Snapshots = (*Snapshots)(nil)

// Option tunes the buckets NewSnapshots and NewCheckpoints create.
type Option func(*jetstream.KeyValueConfig)

// WithReplicas sets a bucket's replica count: 1 on a single server (the default), 3
// on a cluster. Zero or less keeps the default.
func WithReplicas(n int) Option {
	return func(c *jetstream.KeyValueConfig) {
		if n > 0 {
			c.Replicas = n
		}
	}
}

// NewSnapshots opens (creating if needed) the bucket named bucket, SnapshotBucket
// when empty. It returns the JetStream error, wrapped, when the bucket can neither
// be opened nor created.
func NewSnapshots(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Snapshots, error) {
	kv, err := declare(ctx, js, bucket, SnapshotBucket, "snapshots",
		"Latest snapshot of each event-sourced order (an optimisation; events are the truth)", opts)
	if err != nil {
		return nil, err
	}
	return &Snapshots{kv: kv}, nil
}

// declare opens (creating if needed) the bucket named bucket, or def when empty,
// holding the last value of each key.
func declare(ctx context.Context, js jetstream.JetStream, bucket, def, what, description string, opts []Option) (jetstream.KeyValue, error) {
	if bucket == "" {
		bucket = def
	}
	cfg := jetstream.KeyValueConfig{Bucket: bucket, Description: description, History: 1, Replicas: 1}
	for _, opt := range opts {
		opt(&cfg)
	}
	return messaging.DeclareKeyValue(ctx, js, "order "+what+" bucket "+bucket, cfg)
}

// Get implements app.Snapshots; ok is false for an order without a snapshot.
func (s *Snapshots) Get(ctx context.Context, orderID string) ([]byte, bool, error) {
	e, err := s.kv.Get(ctx, orderID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get snapshot of %s: %w", orderID, err)
	}
	return e.Value(), true, nil
}

// Put implements app.Snapshots. Concurrent writers may overwrite each other; any
// stored snapshot is valid for its own version, so that costs nothing but reads.
func (s *Snapshots) Put(ctx context.Context, orderID string, data []byte) error {
	if _, err := s.kv.Put(ctx, orderID, data); err != nil {
		return fmt.Errorf("put snapshot of %s: %w", orderID, err)
	}
	return nil
}
