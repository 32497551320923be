package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
)

// Idempotency keys are guarded by the event store itself, not by a read model or a
// cache: PlaceOrder appends one small event (order.v1.IdempotencyKeyClaimed) to the
// stream "orderkey-<hex sha256(user NUL key)>" with expected version NoStream,
// recording the order id chosen for that key. Two identical requests racing each
// other race on that append; exactly one wins, and the loser reads the winner's order
// id. The guard is written before the order stream, so a crash between the two leaves
// a key bound to an order not yet stored, which the next retry of the same request
// then places under the recorded id (the domain treats a second identical Place as a
// no-op).
const (
	// KeyCategory is the event-store category of idempotency-key guards.
	KeyCategory = "orderkey"
	// KeyClaimedType is the Type of a guard event: the full name of
	// order.v1.IdempotencyKeyClaimed, whose protobuf encoding is its Data.
	KeyClaimedType = "eventshop.order.v1.IdempotencyKeyClaimed"
	// KeyClaimedRawType is the Type of guard events written before the protobuf
	// message existed: their Data is the order id as raw UTF-8. They are still read,
	// never written.
	KeyClaimedRawType = "eventshop.order.IdempotencyKeyClaimed"
)

// keyStream returns the guard stream of a user's idempotency key. Hashing keeps the
// stream name a valid subject token whatever the key holds, and keeps the user id
// out of subjects.
func keyStream(userID, key string) string {
	sum := sha256.Sum256([]byte(userID + "\x00" + key))
	return KeyCategory + "-" + hex.EncodeToString(sum[:])
}

// lookupKey returns the order id bound to the user's key; ok is false when none is.
func (r *Repository) lookupKey(ctx context.Context, userID, key string) (orderID string, ok bool, err error) {
	evs, err := r.store.ReadStream(ctx, keyStream(userID, key), 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up idempotency key: %w", err)
	}
	if len(evs) == 0 {
		return "", false, fmt.Errorf("look up idempotency key: empty guard stream %s", keyStream(userID, key))
	}
	orderID, err = claimedOrder(evs[0])
	if err != nil {
		return "", false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return orderID, true, nil
}

// claimedOrder returns the order id a guard event binds its key to, in either stored
// form. It returns an error for another type, an undecodable payload or no order id.
func claimedOrder(ev eventstore.Event) (string, error) {
	var orderID string
	switch ev.Type {
	case KeyClaimedType:
		var m orderv1.IdempotencyKeyClaimed
		if err := proto.Unmarshal(ev.Data, &m); err != nil {
			return "", fmt.Errorf("guard stream %s: %w", ev.Stream, err)
		}
		orderID = m.GetOrderId()
	case KeyClaimedRawType:
		orderID = string(ev.Data)
	default:
		return "", fmt.Errorf("guard stream %s: unexpected event type %q", ev.Stream, ev.Type)
	}
	if orderID == "" {
		return "", fmt.Errorf("guard stream %s: no order id", ev.Stream)
	}
	return orderID, nil
}

// claimKey binds the user's key to orderID unless it is bound already, and returns
// the order id the key is bound to: orderID when this call won, the earlier one
// otherwise.
func (r *Repository) claimKey(ctx context.Context, userID, key, orderID string) (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("claim idempotency key: %w", err)
	}
	data, err := proto.Marshal(&orderv1.IdempotencyKeyClaimed{OrderId: orderID})
	if err != nil {
		return "", fmt.Errorf("claim idempotency key: %w", err)
	}
	ev := eventstore.Event{
		ID:       id.String(),
		Type:     KeyClaimedType,
		Data:     data,
		Metadata: map[string]string{MetaSchemaVersion: "1"},
	}
	_, err = r.store.Append(ctx, keyStream(userID, key), eventstore.NoStream, ev)
	if err == nil {
		return orderID, nil
	}
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return "", fmt.Errorf("claim idempotency key: %w", err)
	}
	winner, ok, err := r.lookupKey(ctx, userID, key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("claim idempotency key: guard lost but unreadable")
	}
	return winner, nil
}
