package devissuer_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

func start(t *testing.T, cfg devissuer.Config) *devissuer.Issuer {
	t.Helper()
	iss, err := devissuer.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { iss.Close() })
	return iss
}

func verify(t *testing.T, iss *devissuer.Issuer, tok string) *auth.Claims {
	t.Helper()
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return c
}

func TestLoginIssuesVerifiableToken(t *testing.T) {
	iss := start(t, devissuer.Config{})
	tok, err := iss.Login(t.Context(), "admin", "admin-password")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, iss, tok)
	if c.Subject != "admin" || !c.HasRole("admin") || !c.HasScope("orders:write") || c.Email != "admin@example.com" || c.ClientID != "storefront" {
		t.Errorf("claims = %+v", c)
	}
}

func TestLoginRejectsBadCredentials(t *testing.T) {
	iss := start(t, devissuer.Config{})
	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong"},
		{"alice", ""},
		{"mallory", "alice-password"},
	} {
		if _, err := iss.Login(t.Context(), tc.user, tc.password); !errors.Is(err, devissuer.ErrInvalidCredentials) {
			t.Errorf("Login(%q, %q) = %v, want ErrInvalidCredentials", tc.user, tc.password, err)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	iss := start(t, devissuer.Config{})
	tok, err := iss.ClientCredentials(t.Context(), "shop-cli", "shop-cli-secret", "orders:read", "not-granted")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, iss, tok)
	if c.Subject != "shop-cli" || !c.HasRole("service") {
		t.Errorf("subject/roles = %q/%v, want shop-cli/[service]", c.Subject, c.Roles)
	}
	if len(c.Scopes) != 1 || c.Scopes[0] != "orders:read" {
		t.Errorf("scopes = %v, want only the granted orders:read", c.Scopes)
	}

	if _, err := iss.ClientCredentials(t.Context(), "shop-cli", "wrong"); !errors.Is(err, devissuer.ErrInvalidCredentials) {
		t.Errorf("wrong secret: %v, want ErrInvalidCredentials", err)
	}
	// storefront is not allowed the client credentials grant.
	if _, err := iss.ClientCredentials(t.Context(), "storefront", "storefront-secret"); err == nil {
		t.Error("storefront obtained a client credentials token")
	}
}

func TestCustomUsersClientsAndAudience(t *testing.T) {
	iss := start(t, devissuer.Config{
		Audience:       "shop-api",
		AccessTokenTTL: time.Minute,
		Users:          []devissuer.User{{Username: "carol", Password: "pw", Scopes: []string{"openid", "cart"}, Roles: []string{"support"}}},
		Clients: []devissuer.Client{{
			ID: "spa", RedirectURIs: []string{"http://127.0.0.1:9/cb"}, Scopes: []string{"cart", "orders:write"},
		}},
	})
	// A public client (no secret) still logs in, protected by PKCE alone.
	tok, err := iss.Login(t.Context(), "carol", "pw")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, iss, tok)
	if c.Subject != "carol" || c.ClientID != "spa" || !c.HasRole("support") || !c.HasScope("cart") || c.HasScope("orders:write") {
		t.Errorf("claims = %+v (orders:write is the client's, not carol's)", c)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]devissuer.Config{
		"duplicate user":   {Users: []devissuer.User{{Username: "a"}, {Username: "a"}}},
		"nameless client":  {Clients: []devissuer.Client{{RedirectURIs: []string{"http://x/cb"}}}},
		"useless client":   {Clients: []devissuer.Client{{ID: "c"}}},
		"secretless robot": {Clients: []devissuer.Client{{ID: "c", ClientCredentials: true}}},
	} {
		if _, err := devissuer.Start(t.Context(), cfg); err == nil {
			t.Errorf("%s: Start accepted an invalid config", name)
		}
	}
}

// authorize starts a code flow for storefront by hand and returns the login page URL.
func authorize(t *testing.T, iss *devissuer.Issuer, verifier string) *url.URL {
	t.Helper()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id":             {"storefront"},
		"redirect_uri":          {"http://localhost:8080/auth/callback"},
		"response_type":         {"code"},
		"scope":                 {"openid cart"},
		"state":                 {"s1"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	resp, err := http.Get(iss.URL() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("authRequestID") == "" {
		t.Fatalf("authorize ended at %s with %s", resp.Request.URL, resp.Status)
	}
	return resp.Request.URL
}

func TestLoginPage(t *testing.T) {
	iss := start(t, devissuer.Config{})
	page := authorize(t, iss, strings.Repeat("v", 43))

	resp, err := http.Get(page.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) || !strings.Contains(string(body), page.Query().Get("authRequestID")) {
		t.Fatalf("login page: %s\n%s", resp.Status, body)
	}
	// It looks like the shop and fits a phone.
	for _, want := range []string{"<title>Sign in · eventshop</title>", `<span class="brand">eventshop</span>`, `name="viewport"`, "--accent:#c2621a"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("login page lacks %q", want)
		}
	}

	resp, err = http.PostForm(page.String(), url.Values{
		"authRequestID": {page.Query().Get("authRequestID")},
		"username":      {"alice"},
		"password":      {"nope"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Invalid username or password") || !strings.Contains(string(body), `value="alice"`) {
		t.Fatalf("bad credentials: %s\n%s", resp.Status, body)
	}
}

// TestCodeExchangeEnforcesPKCE runs the flow by hand and presents a wrong verifier:
// a stolen code alone must not buy a token.
func TestCodeExchangeEnforcesPKCE(t *testing.T) {
	iss := start(t, devissuer.Config{})
	page := authorize(t, iss, strings.Repeat("a", 43))

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(page.String(), url.Values{
		"authRequestID": {page.Query().Get("authRequestID")},
		"username":      {"alice"},
		"password":      {"alice-password"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Follow op's callback up to the redirect to the client.
	for resp.StatusCode/100 == 3 && !strings.HasPrefix(resp.Header.Get("Location"), "http://localhost:8080/") {
		next, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		if resp, err = noFollow.Get(next.String()); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cb, err := resp.Location()
	if err != nil {
		t.Fatalf("no redirect to the client: %s", resp.Status)
	}
	code := cb.Query().Get("code")
	if code == "" || cb.Query().Get("state") != "s1" {
		t.Fatalf("callback %s lacks code or state", cb)
	}

	exchange := func(verifier string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, iss.URL()+"/oauth/token", strings.NewReader(url.Values{
			"grant_type":    {"authorization_code"},
			"code":          {code},
			"redirect_uri":  {"http://localhost:8080/auth/callback"},
			"code_verifier": {verifier},
		}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("storefront", "storefront-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := exchange(strings.Repeat("b", 43)); status == http.StatusOK || out["access_token"] != nil {
		t.Fatalf("wrong PKCE verifier got a token: %d %v", status, out)
	}
	if status, out := exchange(strings.Repeat("a", 43)); status != http.StatusOK || out["access_token"] == nil {
		t.Fatalf("right verifier: %d %v", status, out)
	}
}

func storefrontClient(t *testing.T) devissuer.Client {
	t.Helper()
	for _, c := range devissuer.DefaultClients() {
		if c.ID == "storefront" {
			return c
		}
	}
	t.Fatal("no storefront client")
	return devissuer.Client{}
}

func TestRefreshTokensRenewOnceAndDieAtRevocation(t *testing.T) {
	iss := start(t, devissuer.Config{AccessTokenTTL: time.Minute})
	sf := storefrontClient(t)
	ctx := t.Context()

	plain, err := devissuer.LoginTokensAt(ctx, iss.URL(), sf, "alice", "alice-password", "openid", "cart")
	if err != nil || plain.Refresh != "" {
		t.Fatalf("login without offline_access: refresh %q, %v; want none", plain.Refresh, err)
	}
	first, err := devissuer.LoginTokensAt(ctx, iss.URL(), sf, "alice", "alice-password", "openid", "cart", "offline_access")
	if err != nil || first.Refresh == "" {
		t.Fatalf("login with offline_access: %+v, %v; want a refresh token", first, err)
	}
	next, err := devissuer.RefreshAt(ctx, iss.URL(), sf, first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, iss, next.Access); c.Subject != "alice" || !c.HasScope("cart") || c.HasScope("orders:write") {
		t.Fatalf("refreshed claims %+v: want alice with the scopes of her login", c)
	}
	if next.Refresh == "" || next.Refresh == first.Refresh {
		t.Fatal("a refresh must hand out a new refresh token")
	}
	if _, err := devissuer.RefreshAt(ctx, iss.URL(), sf, first.Refresh); err == nil {
		t.Fatal("a used refresh token renewed again")
	}
	if n := iss.RefreshTokens("alice"); n != 1 {
		t.Fatalf("alice holds %d refresh tokens, want 1", n)
	}

	// Only the client it was issued to may revoke it.
	other := devissuer.Client{ID: "shop-cli", Secret: "shop-cli-secret"}
	_ = devissuer.RevokeAt(ctx, iss.URL(), other, next.Refresh)
	if n := iss.RefreshTokens("alice"); n != 1 {
		t.Fatal("another client revoked alice's refresh token")
	}
	if err := devissuer.RevokeAt(ctx, iss.URL(), sf, next.Refresh); err != nil {
		t.Fatal(err)
	}
	if _, err := devissuer.RefreshAt(ctx, iss.URL(), sf, next.Refresh); err == nil {
		t.Fatal("a revoked refresh token renewed")
	}
	if n := iss.RefreshTokens("alice"); n != 0 {
		t.Fatalf("alice holds %d refresh tokens after revocation, want 0", n)
	}
}
