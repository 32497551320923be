package auth

import (
	"hash/maphash"
	"testing"
	"time"
)

// The window in which an entry answers: from its nbf (less leeway, as Verify
// computed it) up to, not including, the earlier of exp and the cache TTL.
func TestTokenCacheWindow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const ttl = time.Minute
	tests := []struct {
		name      string
		validFrom time.Time
		exp       time.Time
		at        time.Time
		hit       bool
	}{
		{"just verified", time.Time{}, now.Add(time.Hour), now, true},
		{"inside the TTL", time.Time{}, now.Add(time.Hour), now.Add(ttl - time.Nanosecond), true},
		{"TTL reached, token still valid", time.Time{}, now.Add(time.Hour), now.Add(ttl), false},
		{"before exp", time.Time{}, now.Add(30 * time.Second), now.Add(30*time.Second - time.Nanosecond), true},
		{"exp reached inside the TTL", time.Time{}, now.Add(30 * time.Second), now.Add(30 * time.Second), false},
		{"clock moved back before nbf", now.Add(-time.Second), now.Add(time.Hour), now.Add(-2 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTokenCache(4, ttl)
			c.put(&Claims{Subject: "alice", Token: "tok"}, now, tt.validFrom, tt.exp)
			if _, hit := c.get("tok", tt.at); hit != tt.hit {
				t.Fatalf("hit = %v, want %v", hit, tt.hit)
			}
			if !tt.hit && c.len() != 0 {
				t.Errorf("a stale entry stayed: %d cached", c.len())
			}
		})
	}

	c := newTokenCache(4, ttl)
	c.put(&Claims{Subject: "alice", Token: "late"}, now, time.Time{}, now.Add(-time.Second))
	if c.len() != 0 {
		t.Error("a token already past exp (in its leeway) was cached")
	}
}

// Eviction drops the least recently used token, counting reads as use.
func TestTokenCacheEvictsLeastRecentlyUsed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour)
	c := newTokenCache(2, time.Hour)
	c.put(&Claims{Subject: "a", Token: "a"}, now, time.Time{}, exp)
	c.put(&Claims{Subject: "b", Token: "b"}, now, time.Time{}, exp)
	if _, ok := c.get("a", now); !ok {
		t.Fatal("a missing")
	}
	c.put(&Claims{Subject: "c", Token: "c"}, now, time.Time{}, exp)
	for tok, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, ok := c.get(tok, now); ok != want {
			t.Errorf("%s cached = %v, want %v", tok, ok, want)
		}
	}
	if c.len() != 2 {
		t.Errorf("%d cached, bound is 2", c.len())
	}
}

// An entry answers only the token it holds: a token whose key is the same (a hash
// collision, forced here) misses, is not handed the other token's claims, and
// leaves the entry in place.
func TestTokenCacheAnswersOnlyItsOwnToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newTokenCache(4, time.Hour)
	c.put(&Claims{Subject: "alice", Token: "alice-token"}, now, time.Time{}, now.Add(time.Hour))
	e, ok := c.entries.Get(maphash.String(c.seed, "alice-token"))
	if !ok {
		t.Fatal("alice's token was not cached")
	}
	c.entries.Add(maphash.String(c.seed, "mallory-token"), e) // mallory's key now holds alice's entry
	if claims, hit := c.get("mallory-token", now); hit {
		t.Fatalf("a colliding token was answered with %q's claims", claims.Subject)
	}
	if claims, hit := c.get("alice-token", now); !hit || claims.Subject != "alice" {
		t.Fatalf("alice's own token: hit %v, claims %+v", hit, claims)
	}
}
