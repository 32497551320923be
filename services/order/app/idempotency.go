package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/eventshop/eventshop/pkg/eventstore"
)

// Idempotency keys are guarded by the event store itself, not by a read model or a
// cache: PlaceOrder appends one small event to the stream
// "orderkey-<hex sha256(user NUL key)>" with expected version NoStream, recording the
// order id chosen for that key. Two identical requests racing each other race on that
// append; exactly one wins, and the loser reads the winner's order id. The guard is
// written before the order stream, so a crash between the two leaves a key bound to
// an order not yet stored, which the next retry of the same request then places under
// the recorded id (the domain treats a second identical Place as a no-op).
const (
	// KeyCategory is the event-store category of idempotency-key guards.
	KeyCategory = "orderkey"
	// KeyClaimedType is the Type of a guard event; its Data is the order id (UTF-8).
	KeyClaimedType = "eventshop.order.IdempotencyKeyClaimed"
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
	if len(evs) == 0 || evs[0].Type != KeyClaimedType || len(evs[0].Data) == 0 {
		return "", false, fmt.Errorf("look up idempotency key: malformed guard stream %s", keyStream(userID, key))
	}
	return string(evs[0].Data), true, nil
}

// claimKey binds the user's key to orderID unless it is bound already, and returns
// the order id the key is bound to: orderID when this call won, the earlier one
// otherwise.
func (r *Repository) claimKey(ctx context.Context, userID, key, orderID string) (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("claim idempotency key: %w", err)
	}
	ev := eventstore.Event{
		ID:       id.String(),
		Type:     KeyClaimedType,
		Data:     []byte(orderID),
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
