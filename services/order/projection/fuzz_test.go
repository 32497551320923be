package projection

import (
	"errors"
	"testing"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// A page token comes from the client: any text. Decoding never panics, refuses with
// ErrInvalidPageToken, and a token it accepts is one this user's listing could have
// issued: encoding the cursor again gives a token that decodes to the same cursor.
func FuzzOrderPageToken(f *testing.F) {
	f.Add(encodeCursor(cursor{CreatedAt: 1700000000, ID: "a"}, filterKey("alice", 0)), "alice", int32(0))
	f.Add("eyJmIjoxfQ", "bob", int32(3))
	f.Add("!!", "alice", int32(1))
	f.Fuzz(func(t *testing.T, token, user string, status int32) {
		filter := filterKey(user, orderv1.OrderStatus(status))
		c, err := decodeCursor(token, filter)
		if err != nil {
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("decodeCursor(%q): %v, not ErrInvalidPageToken", token, err)
			}
			return
		}
		again, err := decodeCursor(encodeCursor(c, filter), filter)
		if err != nil || again != c {
			t.Fatalf("accepted %q as %+v, which re-encodes to %+v, %v", token, c, again, err)
		}
	})
}
