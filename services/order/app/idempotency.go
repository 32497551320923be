package app

import (
	"github.com/google/uuid"
)

// Idempotency keys are guarded by the order stream itself. The order id is a
// function of the user and the key (OrderIDFor), and PlaceOrder creates the order's
// stream with expected version NoStream. Two identical requests racing each other
// race on that one append: exactly one wins, and the loser reads the winner's
// order. There is no guard to write first, so a placed order costs one append, and
// no crash can leave a key bound to an order that was never stored.
//
// Requests placed before this scheme recorded the key in a separate guard stream
// ("orderkey-<hex sha256(user NUL key)>") under a random order id; those guards are
// no longer read, so a retry of such a request after upgrading places a new order.

// orderNamespace scopes the name-based order ids: a UUIDv5 of "<user> NUL <key>" in
// it is the order id of that user's key.
var orderNamespace = uuid.MustParse("6f6b8d0e-2f4d-5c8a-9e1b-3a7c5d2e4f60")

// OrderIDFor returns the id of the order that user userID places with idempotency
// key key: the same for every retry of one request, different across users, and
// not revealing either (a UUIDv5, a SHA-1 name hash).
func OrderIDFor(userID, key string) string {
	return uuid.NewSHA1(orderNamespace, []byte(userID+"\x00"+key)).String()
}
