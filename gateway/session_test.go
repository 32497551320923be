package gateway_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
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
