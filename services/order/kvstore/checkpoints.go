package kvstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
)

// CheckpointBucket is the NATS KV bucket holding how far each saga follower read
// its category, keyed by follower name.
const CheckpointBucket = "order_followers"

// Checkpoints stores follower checkpoints in a NATS KV bucket.
type Checkpoints struct {
	kv jetstream.KeyValue
}

var _ app.Checkpoints = (*Checkpoints)(nil)

// NewCheckpoints opens (creating if needed) the bucket named bucket,
// CheckpointBucket when empty. It returns the JetStream error, wrapped, when the
// bucket can neither be opened nor created.
func NewCheckpoints(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Checkpoints, error) {
	kv, err := declare(ctx, js, bucket, CheckpointBucket, "checkpoints",
		"How far the order service's saga followers read their event categories", opts)
	if err != nil {
		return nil, err
	}
	return &Checkpoints{kv: kv}, nil
}

// Load implements app.Checkpoints: eventstore.Start for a follower without one. It
// returns the JetStream error, wrapped, or an error for a malformed value.
func (c *Checkpoints) Load(ctx context.Context, name string) (eventstore.Position, error) {
	e, err := c.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return eventstore.Start, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	if len(e.Value()) != 8 {
		return 0, fmt.Errorf("load checkpoint %s: %d bytes, want 8", name, len(e.Value()))
	}
	return eventstore.Position(binary.BigEndian.Uint64(e.Value())), nil
}

// Save implements app.Checkpoints; it returns the JetStream error, wrapped.
func (c *Checkpoints) Save(ctx context.Context, name string, pos eventstore.Position) error {
	if _, err := c.kv.Put(ctx, name, binary.BigEndian.AppendUint64(nil, uint64(pos))); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}
