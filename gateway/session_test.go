package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eventshop/eventshop/gateway"
)

// Access tokens live minutes; a storefront session lives on by renewing them with
// its refresh token, and logout revokes that at the issuer, so nothing can renew
// the session afterwards.
func TestSessionOutlivesItsAccessTokenAndLogoutRevokesIt(t *testing.T) {
	const ttl = 2 * time.Second
	s := startShop(t, shopOptions{accessTTL: ttl})
	b := s.login("alice")
	if n := s.issuer.RefreshTokens("alice"); n != 1 {
		t.Fatalf("alice holds %d refresh tokens after login, want 1", n)
	}
	token := b.csrf()
	add := url.Values{"csrf_token": {token}, "product_id": {"french-press"}, "quantity": {"1"}}

	time.Sleep(ttl + time.Second) // the login's access token has expired
	if r := b.post("/cart/items", add); r.code != http.StatusSeeOther {
		t.Fatalf("add to cart after the first access token expired: %d %s", r.code, r.body)
	}
	contains(t, b.get("/cart"), "French Press 1 L", "Log out")
	if n := s.issuer.RefreshTokens("alice"); n != 1 {
		t.Fatalf("alice holds %d refresh tokens after renewals, want 1 (each renewal retires the last)", n)
	}

	if r := b.post("/auth/logout", url.Values{"csrf_token": {token}}); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.code)
	}
	if n := s.issuer.RefreshTokens("alice"); n != 0 {
		t.Fatalf("alice holds %d refresh tokens after logout, want 0", n)
	}
	if r := b.post("/cart/items", add); r.code != http.StatusForbidden {
		t.Fatalf("add after logout: %d", r.code)
	}
}

// Sessions kept in JetStream outlive the gateway: after a restart the browser is
// still logged in with the same form token, its access token is renewed by the new
// process, and a logout is final for every process that comes after.
func TestSessionSurvivesAGatewayRestart(t *testing.T) {
	const ttl = 2 * time.Second
	s := startShop(t, shopOptions{accessTTL: ttl, natsSessions: true})
	b := s.login("alice")
	token := b.csrf()
	add := func(product string) response {
		t.Helper()
		return b.post("/cart/items", url.Values{"csrf_token": {token}, "product_id": {product}, "quantity": {"1"}})
	}
	if r := add("french-press"); r.code != http.StatusSeeOther {
		t.Fatalf("add before the restart: %d %s", r.code, r.body)
	}

	s.restartGateway()
	page := b.get("/cart")
	contains(t, page, "French Press 1 L", "Log out", "Added to your cart.") // the flash waited in the store
	if r := add("burr-grinder"); r.code != http.StatusSeeOther {
		t.Fatalf("add after the restart with the form token from before it: %d %s", r.code, r.body)
	}

	time.Sleep(ttl + time.Second) // the login's access token has expired
	s.restartGateway()
	// Requests of one page arrive together: they renew the token once between them.
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() { codes[i] = b.get("/cart").code })
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d after the token expired: %d", i, c)
		}
	}
	contains(t, b.get("/cart"), "Conical Burr Grinder", "Log out")
	if n := s.issuer.RefreshTokens("alice"); n != 1 {
		t.Fatalf("alice holds %d refresh tokens after the renewal, want 1", n)
	}

	if r := b.post("/auth/logout", url.Values{"csrf_token": {token}}); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.code)
	}
	s.restartGateway()
	if r := add("french-press"); r.code != http.StatusForbidden {
		t.Fatalf("add after logout and a restart: %d", r.code)
	}
}

// A session carries the tokens of the user who logged in, and of no one else: a
// stored record whose access token is another user's (a misbehaving issuer, a
// tampered store) ends the session instead of serving that user's data.
func TestSessionRefusesAnotherUsersToken(t *testing.T) {
	s := startShop(t, shopOptions{natsSessions: true})
	b := s.login("alice")
	u, _ := url.Parse(s.url)
	var id string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "eventshop_session" {
			id = c.Value
		}
	}
	sum := sha256.Sum256([]byte(id))
	key := "s." + hex.EncodeToString(sum[:])
	kv, err := s.js.KeyValue(t.Context(), gateway.SessionBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("alice's session record: %v", err)
	}
	var rec map[string]any
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	rec["token"].(map[string]any)["access_token"] = s.token("bob")
	forged, _ := json.Marshal(rec)
	if _, err := kv.Put(t.Context(), key, forged); err != nil {
		t.Fatal(err)
	}

	page := b.get("/cart")
	if bytes.Contains(page.body, []byte("Log out")) || bytes.Contains(page.body, []byte("Bob")) {
		t.Fatalf("the session serves bob's token as alice's:\n%s", page.body)
	}
	if _, err := kv.Get(t.Context(), key); err == nil {
		t.Fatal("the session's record is still there")
	}
}
