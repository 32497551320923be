package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eventshop/eventshop/services/order/domain"
)

// SnapshotSchemaVersion is the version of the stored snapshot layout. Bump it when
// domain.Snapshot changes incompatibly: older snapshots are then ignored and rebuilt
// from the events, which stay the source of truth.
const SnapshotSchemaVersion = 1

// Snapshots stores one opaque snapshot per order, beside its event stream. Losing or
// corrupting a snapshot costs only load time, never correctness.
type Snapshots interface {
	// Get returns the stored snapshot of orderID; ok is false when there is none.
	// Errors are storage failures.
	Get(ctx context.Context, orderID string) (data []byte, ok bool, err error)
	// Put replaces the snapshot of orderID. Errors are storage failures.
	Put(ctx context.Context, orderID string, data []byte) error
}

// snapshotEnvelope is the stored layout: the schema version beside the state, so a
// reader can tell a layout it does not understand from a valid one.
type snapshotEnvelope struct {
	Schema int             `json:"schema"`
	Order  domain.Snapshot `json:"order"`
}

func encodeSnapshot(o *domain.Order) ([]byte, error) {
	return json.Marshal(snapshotEnvelope{Schema: SnapshotSchemaVersion, Order: o.Snapshot()})
}

// decodeSnapshot returns the order restored from data, or an error saying why the
// snapshot cannot be trusted.
func decodeSnapshot(orderID string, data []byte) (*domain.Order, error) {
	var env snapshotEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if env.Schema != SnapshotSchemaVersion {
		return nil, fmt.Errorf("snapshot schema %d, want %d", env.Schema, SnapshotSchemaVersion)
	}
	if env.Order.ID != orderID {
		return nil, fmt.Errorf("snapshot of order %q stored under %q", env.Order.ID, orderID)
	}
	o, err := domain.FromSnapshot(env.Order)
	if err != nil {
		return nil, err
	}
	if o.Version() < 1 {
		return nil, fmt.Errorf("snapshot at version %d", o.Version())
	}
	return o, nil
}
