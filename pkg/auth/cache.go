package auth

import (
	"container/list"
	"crypto/sha256"
	"slices"
	"sync"
	"time"
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
// costs one signature check instead of one per call. It is a bounded map with least
// recently used eviction, safe for concurrent use.
//
// Keys are SHA-256 digests of the whole raw token: a token that differs in any byte
// (signature, payload or header) misses and is verified in full. An entry answers
// only inside [from, until): from is when the nbf check starts to pass (nbf less the
// leeway), until is the token's expiry without the leeway, capped by the TTL. So a
// cached token is never accepted where verification would refuse it, and a token in
// the leeway after its expiry is verified afresh on every use.
type tokenCache struct {
	size int
	ttl  time.Duration

	mu    sync.Mutex
	byKey map[[sha256.Size]byte]*list.Element
	order list.List // of *cacheEntry, most recently used first
}

type cacheEntry struct {
	key         [sha256.Size]byte
	claims      *Claims
	from, until time.Time
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	return &tokenCache{size: size, ttl: ttl, byKey: make(map[[sha256.Size]byte]*list.Element, size)}
}

// get returns a copy of the claims cached for raw if they are valid at now.
func (c *tokenCache) get(raw string, now time.Time) (*Claims, bool) {
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	el, ok := c.byKey[key]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if now.Before(e.from) || !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.byKey, key)
		c.mu.Unlock()
		return nil, false
	}
	c.order.MoveToFront(el)
	c.mu.Unlock()
	// Digests of different tokens do not collide in practice; comparing costs little
	// and makes the answer not depend on that.
	if e.claims.Token != raw {
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
	e := &cacheEntry{key: sha256.Sum256([]byte(claims.Token)), claims: cloneClaims(claims), from: validFrom, until: until}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*cacheEntry).key)
	}
	c.byKey[e.key] = c.order.PushFront(e)
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// cloneClaims copies c deeply enough that a caller appending to or editing its
// slices cannot change what the cache hands the next caller.
func cloneClaims(c *Claims) *Claims {
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	out.Roles = slices.Clone(c.Roles)
	return &out
}
