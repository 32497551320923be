package auth

import (
	"hash/maphash"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults of the verified-token cache (VerifierConfig.CacheSize and CacheTTL).
const (
	// DefaultCacheSize bounds the tokens remembered per Verifier: a few thousand
	// signed-in users at once, a few MB at most.
	DefaultCacheSize = 4096
	// DefaultCacheTTL is the longest a token is answered from the cache before it is
	// verified again, however long it has left to live, so that a verifier does not
	// keep trusting one verification for a token's whole lifetime.
	DefaultCacheTTL = 5 * time.Minute
)

// tokenCache remembers tokens that passed every check of Verify, so that the same
// bearer token arriving at every hop of a request, and on every request of a session,
// costs one signature check instead of one per call. It is bounded, with least
// recently used eviction (hashicorp/golang-lru), and safe for concurrent use.
//
// Keys are hashes of the whole raw token (hash/maphash, seeded at random per cache),
// and an entry answers only the very token it holds: a token that differs in any
// byte (signature, payload or header) misses and is verified in full. A seeded
// 64-bit hash costs no allocation and no cryptography on every call; a collision,
// which no caller can aim for without the seed, only costs a verification, since
// the token itself is compared. An entry answers
// only inside [from, until): from is when the nbf check starts to pass (nbf less the
// leeway), until is the token's expiry without the leeway, capped by the TTL. So a
// cached token is never accepted where verification would refuse it, and a token in
// the leeway after its expiry is verified afresh on every use.
type tokenCache struct {
	ttl     time.Duration
	seed    maphash.Seed
	entries *lru.Cache[uint64, *cacheEntry]
}

type cacheEntry struct {
	claims      *Claims
	from, until time.Time
}

// newTokenCache returns a cache of size (at least 1) entries.
func newTokenCache(size int, ttl time.Duration) *tokenCache {
	entries, _ := lru.New[uint64, *cacheEntry](max(size, 1)) // errs only for a size below 1
	return &tokenCache{ttl: ttl, seed: maphash.MakeSeed(), entries: entries}
}

// get returns a copy of the claims cached for raw if they are valid at now.
func (c *tokenCache) get(raw string, now time.Time) (*Claims, bool) {
	key := maphash.String(c.seed, raw)
	e, ok := c.entries.Get(key)
	if !ok {
		return nil, false
	}
	if now.Before(e.from) || !now.Before(e.until) {
		c.entries.Remove(key)
		return nil, false
	}
	if e.claims.Token != raw { // another token with the same hash
		return nil, false
	}
	return cloneClaims(e.claims), true
}

// put remembers claims, verified at now, from validFrom (zero for always) until
// min(exp, now+ttl). It evicts the least recently used entry when full.
func (c *tokenCache) put(claims *Claims, now, validFrom, exp time.Time) {
	until := now.Add(c.ttl)
	if exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return // inside its leeway: verify on every use until it is refused
	}
	c.entries.Add(maphash.String(c.seed, claims.Token), &cacheEntry{claims: cloneClaims(claims), from: validFrom, until: until})
}

func (c *tokenCache) len() int { return c.entries.Len() }

// cloneClaims copies c deeply enough that a caller appending to or editing its
// slices cannot change what the cache hands the next caller.
func cloneClaims(c *Claims) *Claims {
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	out.Roles = slices.Clone(c.Roles)
	return &out
}
