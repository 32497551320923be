package app

import (
	"testing"

	"github.com/google/uuid"
)

func TestOrderIDForIsPerUserAndKey(t *testing.T) {
	a := OrderIDFor("alice", "k1")
	if a != OrderIDFor("alice", "k1") {
		t.Fatal("one user's key gave two order ids")
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	for _, other := range []string{OrderIDFor("bob", "k1"), OrderIDFor("alice", "k2"), OrderIDFor("alicek", "1"), OrderIDFor("alice", "k1 ")} {
		if other == a {
			t.Fatalf("%s shared by two (user, key) pairs", a)
		}
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 {
		t.Fatalf("order id %s: version %v, %v; want a UUIDv5", a, u.Version(), err)
	}
}
