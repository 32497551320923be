package auth_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

// clock is a settable VerifierConfig.Now.
type clock struct{ at atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.set(time.Now())
	return c
}

func (c *clock) now() time.Time      { return time.Unix(0, c.at.Load()) }
func (c *clock) set(t time.Time)     { c.at.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// TestCachedTokenStillExpires: a token cached while valid is refused once it has
// expired, and refused before its nbf, exactly as without the cache.
func TestCachedTokenStillExpires(t *testing.T) {
	const ttl = time.Minute
	iss := startIssuer(t, devissuer.Config{AccessTokenTTL: ttl})
	clk := newClock()
	v := newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) {
		c.Now = clk.now
		c.CacheTTL = time.Hour // longer than the token lives: its expiry must bound the entry
	})
	tok := login(t, iss, "alice")
	start := clk.now()
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if auth.CachedTokens(v) != 1 {
		t.Fatalf("cached %d tokens after one verification, want 1", auth.CachedTokens(v))
	}

	clk.add(ttl / 2)
	if c, err := v.Verify(t.Context(), tok); err != nil || c.Subject != "alice" {
		t.Fatalf("half-way through its life: %+v, %v", c, err)
	}
	// Inside the leeway after expiry verification still accepts; so must the cache.
	clk.set(start.Add(ttl + auth.DefaultLeeway/2))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("inside the leeway: %v", err)
	}
	clk.set(start.Add(ttl + auth.DefaultLeeway + 2*time.Second))
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, auth.ErrTokenExpired) {
		t.Fatalf("expired token that was cached: %v, want ErrTokenExpired", err)
	}
	clk.set(start.Add(-time.Hour))
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, auth.ErrTokenNotYetValid) {
		t.Fatalf("before nbf: %v, want ErrTokenNotYetValid", err)
	}
}

// TestCachedOriginalDoesNotAdmitTamperedCopies: with the genuine token cached, a
// copy that differs in one byte of its signature or payload is verified in full and
// refused; so is the same token at a verifier of another audience or issuer.
func TestCachedOriginalDoesNotAdmitTamperedCopies(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	other := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), nil)
	valid := login(t, iss, "alice")
	if _, err := v.Verify(t.Context(), valid); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), valid); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		v     *auth.Verifier
		token string
		want  error
	}{
		{"signature byte flipped", v, tamperSignature(valid), auth.ErrInvalidSignature},
		{"payload byte changed", v, swapPayload(valid, `"sub":"alice"`, `"sub":"alicf"`), auth.ErrInvalidSignature},
		{"subject swapped", v, swapPayload(valid, `"sub":"alice"`, `"sub":"admin"`), auth.ErrInvalidSignature},
		{"signature dropped", v, valid[:len(valid)-len(segments(valid)[2])], auth.ErrInvalidSignature},
		{"another issuer's token", v, login(t, other, "alice"), auth.ErrWrongIssuer},
		{"another audience", newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) { c.Audience = "billing" }), valid, auth.ErrWrongAudience},
		{"another issuer", newVerifier(t, other.URL(), nil), valid, auth.ErrWrongIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.v.Verify(t.Context(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %+v, %v; want %v", c, err, tt.want)
			}
		})
	}
	if c, err := v.Verify(t.Context(), valid); err != nil || c.Subject != "alice" {
		t.Fatalf("genuine token after the attempts: %+v, %v", c, err)
	}
}

// TestCachedClaimsAreTheCallersOwn: editing the claims one caller got does not
// change what the next caller gets for the same token.
func TestCachedClaimsAreTheCallersOwn(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), nil)
	tok := login(t, iss, "alice")
	first, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%+v", *first)
	first.Subject = "admin"
	first.Scopes[0] = "admin:everything"
	first.Roles = append(first.Roles, "admin")
	second, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", *second); got != want {
		t.Fatalf("claims after a caller edited its copy:\n got %s\nwant %s", got, want)
	}
}

// TestCacheIsBounded: however many distinct tokens arrive, at most CacheSize are
// kept, and evicted ones still verify.
func TestCacheIsBounded(t *testing.T) {
	const size = 3
	iss := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) { c.CacheSize = size })
	var toks []string
	for range 3 * size {
		tok, err := iss.ClientCredentials(t.Context(), "shop-cli", "shop-cli-secret")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	for round := range 2 {
		for i, tok := range toks {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("round %d token %d: %v", round, i, err)
			}
			if n := auth.CachedTokens(v); n > size {
				t.Fatalf("cache holds %d tokens, bound is %d", n, size)
			}
		}
	}
	if n := auth.CachedTokens(v); n != size {
		t.Fatalf("cache holds %d tokens after %d distinct ones, want %d", n, len(toks), size)
	}

	off := newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) { c.CacheSize = -1 })
	if _, err := off.Verify(t.Context(), toks[0]); err != nil || auth.CachedTokens(off) != 0 {
		t.Fatalf("cache off: err %v, %d cached", err, auth.CachedTokens(off))
	}
}

// TestCacheConcurrentUse hammers a cache smaller than the set of tokens in use from
// many goroutines (run with -race): every answer is the right subject.
func TestCacheConcurrentUse(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) { c.CacheSize = 2 })
	users := []string{"alice", "bob", "admin"}
	toks := map[string]string{}
	for _, u := range users {
		toks[u] = login(t, iss, u)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				u := users[(g+i)%len(users)]
				c, err := v.Verify(t.Context(), toks[u])
				if err != nil || c.Subject != u {
					t.Errorf("goroutine %d: %s's token gave %+v, %v", g, u, c, err)
					return
				}
				c.Scopes = append(c.Scopes[:0], "edited") // callers may write to their copy
			}
		})
	}
	wg.Wait()
}
