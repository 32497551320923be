package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/poll"
)

var address = map[string]any{
	"name": "Alice Example", "street": "1 Main St", "city": "Springfield", "postalCode": "12345", "countryCode": "US",
}

// placeOrder places an order through the API and waits until the read model has it.
func (s *shop) placeOrder(token, key string) string { return s.placeOrderWith(token, key, "tok_visa") }

func (s *shop) placeOrderWith(token, key, card string) string {
	s.t.Helper()
	r := s.api("POST", "/api/v1/orders", token, map[string]any{
		"idempotencyKey":  key,
		"items":           []map[string]any{{"productId": "espresso-machine", "quantity": 1}, {"productId": "burr-grinder", "quantity": 2}},
		"shippingAddress": address,
		"paymentToken":    card,
	})
	if r.code != http.StatusOK {
		s.t.Fatalf("place order: %d %s", r.code, r.body)
	}
	id, _ := r.json(s.t)["orderId"].(string)
	if id == "" {
		s.t.Fatalf("no orderId in %s", r.body)
	}
	poll.Until(s.t, "order in the read model", func() bool {
		return s.api("GET", "/api/v1/orders/"+id, token, nil).code == http.StatusOK
	})
	return id
}

// TestEveryRoute calls each route of the API once, as a user allowed to, through
// the real services.
func TestEveryRoute(t *testing.T) {
	s := startShop(t, shopOptions{})
	alice := s.token("alice")
	admin := s.token("admin")
	orderID := s.placeOrder(alice, "every-route-1")
	// tok_slow holds the saga at payment long enough for a cancel to be accepted.
	slowID := s.placeOrderWith(alice, "every-route-2", "tok_slow")

	tests := []struct {
		method, path, token string
		body                any
		want                string // a substring of the JSON answer
	}{
		{"GET", "/api/v1/openapi.json", "", nil, `"/api/v1/products"`},
		{"GET", "/api/v1/products?pageSize=2", "", nil, `"nextPageToken"`},
		{"GET", "/api/v1/products/espresso-machine", "", nil, `"Espresso Machine Duo"`},
		{"GET", "/api/v1/search/products?query=espresso", "", nil, `"espresso-machine"`},
		{"POST", "/api/v1/products:batchGet", "", map[string]any{"ids": []string{"burr-grinder", "french-press"}}, `"french-press"`},
		{"GET", "/api/v1/categories", "", nil, `"coffee"`},
		{"GET", "/api/v1/cart", alice, nil, `"cart"`},
		{"POST", "/api/v1/cart/items", alice, map[string]any{"productId": "french-press", "quantity": 2}, `"french-press"`},
		{"PATCH", "/api/v1/cart/items/french-press", alice, map[string]any{"quantity": 3}, `"quantity":3`},
		{"DELETE", "/api/v1/cart/items/french-press", alice, nil, `"cart"`},
		{"DELETE", "/api/v1/cart", alice, nil, `{}`},
		{"GET", "/api/v1/orders", alice, nil, orderID},
		{"GET", "/api/v1/orders/" + orderID, alice, nil, `"ORDER_STATUS_`},
		{"GET", "/api/v1/orders/" + orderID + "/history", alice, nil, `"entries"`},
		{"GET", "/api/v1/orders/" + orderID + "/versions/1", alice, nil, `"ORDER_STATUS_PENDING"`},
		{"GET", "/api/v1/orders/" + orderID + "/events", alice, nil, `"terminal":true`},
		{"POST", "/api/v1/shipping/quote", "", map[string]any{"items": []map[string]any{{"productId": "french-press", "quantity": 1}}, "address": address}, `"cost"`},
		{"GET", "/api/v1/stock/espresso-machine", alice, nil, `"available"`},
		{"GET", "/api/v1/admin/stock", admin, nil, `"espresso-machine"`},
		{"PUT", "/api/v1/admin/stock/french-press", admin, map[string]any{"available": 42}, `"available":"42"`},
		{"GET", "/api/v1/admin/sales", admin, nil, `{`},
		{"GET", "/api/v1/best-sellers?limit=3", "", nil, `{`},
		{"POST", "/api/v1/orders/" + slowID + ":cancel", alice, map[string]any{"reason": "changed my mind"}, slowID},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := s.api(tc.method, tc.path, tc.token, tc.body)
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			if !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("body lacks %s: %s", tc.want, r.body)
			}
		})
	}
}

// protectedRoutes are the routes that need a token, with what they need.
func protectedRoutes(orderID string) []struct {
	method, path string
	body         any
	scope, role  string
} {
	return []struct {
		method, path string
		body         any
		scope, role  string
	}{
		{"GET", "/api/v1/cart", nil, gateway.ScopeCart, ""},
		{"POST", "/api/v1/cart/items", map[string]any{"productId": "french-press", "quantity": 1}, gateway.ScopeCart, ""},
		{"PATCH", "/api/v1/cart/items/french-press", map[string]any{"quantity": 1}, gateway.ScopeCart, ""},
		{"DELETE", "/api/v1/cart/items/french-press", nil, gateway.ScopeCart, ""},
		{"DELETE", "/api/v1/cart", nil, gateway.ScopeCart, ""},
		{"POST", "/api/v1/orders", map[string]any{}, gateway.ScopeOrdersWrite, ""},
		{"POST", "/api/v1/orders/" + orderID + ":cancel", map[string]any{}, gateway.ScopeOrdersWrite, ""},
		{"GET", "/api/v1/orders", nil, gateway.ScopeOrdersRead, ""},
		{"GET", "/api/v1/orders/" + orderID, nil, gateway.ScopeOrdersRead, ""},
		{"GET", "/api/v1/orders/" + orderID + "/history", nil, gateway.ScopeOrdersRead, ""},
		{"GET", "/api/v1/orders/" + orderID + "/versions/1", nil, gateway.ScopeOrdersRead, ""},
		{"GET", "/api/v1/orders/" + orderID + "/events", nil, gateway.ScopeOrdersRead, ""},
		{"GET", "/api/v1/admin/sales", nil, "", gateway.RoleAdmin},
		{"GET", "/api/v1/admin/stock", nil, "", gateway.RoleAdmin},
		{"PUT", "/api/v1/admin/stock/french-press", map[string]any{"available": 1}, "", gateway.RoleAdmin},
	}
}

func TestUnauthenticated(t *testing.T) {
	s := startShop(t, shopOptions{})
	const someOrder = "0b7c8f4e-8d0c-4a52-9a51-3f8d9b2a1c11"
	for _, rt := range protectedRoutes(someOrder) {
		for _, tok := range []struct{ name, token string }{{"no token", ""}, {"bad token", "not.a.jwt"}, {"forged token", forgedToken}} {
			t.Run(rt.method+" "+rt.path+" "+tok.name, func(t *testing.T) {
				r := s.api(rt.method, rt.path, tok.token, rt.body)
				if r.code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", r.code, r.body)
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate header")
				}
				if e := r.json(t)["error"].(map[string]any); e["status"] != "UNAUTHENTICATED" {
					t.Errorf("error body %v", e)
				}
			})
		}
	}
	// A bad token is refused even where none is needed: a caller that sends one
	// wants to be someone, and is not.
	if r := s.api("GET", "/api/v1/products", "not.a.jwt", nil); r.code != http.StatusUnauthorized {
		t.Errorf("public route with a bad token: %d", r.code)
	}
}

// forgedToken is a well-formed RS256 JWT for alice signed by nobody the issuer knows.
const forgedToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmdlZCIsInR5cCI6IkpXVCJ9." +
	"eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJldmVudHNob3AiLCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoiY2FydCBvcmRlcnM6cmVhZCBvcmRlcnM6d3JpdGUifQ." +
	"c2lnbmF0dXJl"

func TestForbiddenWithoutScopeOrRole(t *testing.T) {
	s := startShop(t, shopOptions{})
	const someOrder = "0b7c8f4e-8d0c-4a52-9a51-3f8d9b2a1c11"
	bare := s.token("alice", "openid") // no API scopes at all
	alice := s.token("alice")          // every scope, no admin role
	for _, rt := range protectedRoutes(someOrder) {
		tok := bare
		if rt.role != "" {
			tok = alice
		}
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := s.api(rt.method, rt.path, tok, rt.body)
			if r.code != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.code, r.body)
			}
			want := rt.scope + rt.role
			if !strings.Contains(string(r.body), want) {
				t.Errorf("error does not name %q: %s", want, r.body)
			}
		})
	}
}

// TestUsersAreIsolated: bob can neither read nor cancel alice's order, and the cart
// routes only ever touch the caller's own cart.
func TestUsersAreIsolated(t *testing.T) {
	s := startShop(t, shopOptions{})
	alice, bob := s.token("alice"), s.token("bob")
	id := s.placeOrder(alice, "isolation-1")

	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/orders/" + id, nil},
		{"GET", "/api/v1/orders/" + id + "/history", nil},
		{"GET", "/api/v1/orders/" + id + "/versions/1", nil},
		{"GET", "/api/v1/orders/" + id + "/events", nil},
		{"POST", "/api/v1/orders/" + id + ":cancel", map[string]any{"reason": "not mine"}},
	} {
		t.Run("order "+rt.method+" "+rt.path, func(t *testing.T) {
			r := s.api(rt.method, rt.path, bob, rt.body)
			if r.code != http.StatusNotFound && r.code != http.StatusForbidden {
				t.Fatalf("bob got %d: %s", r.code, r.body)
			}
			if strings.Contains(string(r.body), "espresso-machine") {
				t.Fatalf("bob saw alice's order: %s", r.body)
			}
		})
	}
	t.Run("order list", func(t *testing.T) {
		r := s.api("GET", "/api/v1/orders", bob, nil)
		if r.code != http.StatusOK || strings.Contains(string(r.body), id) {
			t.Fatalf("bob's list: %d %s", r.code, r.body)
		}
	})
	t.Run("order still open for alice", func(t *testing.T) {
		r := s.api("GET", "/api/v1/orders/"+id, alice, nil)
		if r.code != http.StatusOK || strings.Contains(string(r.body), "not mine") {
			t.Fatalf("alice's order after bob's attempts: %d %s", r.code, r.body)
		}
	})

	if r := s.api("POST", "/api/v1/cart/items", alice, map[string]any{"productId": "french-press", "quantity": 2}); r.code != http.StatusOK {
		t.Fatalf("alice add: %d %s", r.code, r.body)
	}
	aliceCart := func() string { return string(s.api("GET", "/api/v1/cart", alice, nil).body) }
	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/cart", nil},
		{"PATCH", "/api/v1/cart/items/french-press", map[string]any{"quantity": 9}},
		{"DELETE", "/api/v1/cart/items/french-press", nil},
		{"DELETE", "/api/v1/cart", nil},
	} {
		t.Run("cart "+rt.method+" "+rt.path, func(t *testing.T) {
			r := s.api(rt.method, rt.path, bob, rt.body)
			if strings.Contains(string(r.body), "alice") || strings.Contains(string(r.body), `"quantity":2`) {
				t.Fatalf("bob's %s %s shows alice's cart: %s", rt.method, rt.path, r.body)
			}
			if c := aliceCart(); !strings.Contains(c, `"quantity":2`) || !strings.Contains(c, "french-press") {
				t.Fatalf("alice's cart changed by bob: %s", c)
			}
		})
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("per user", func(t *testing.T) {
		s := startShop(t, shopOptions{tweak: func(c *gateway.Config) { c.UserRate, c.UserBurst = 0.01, 3 }})
		alice, bob := s.token("alice"), s.token("bob")
		for i := range 3 {
			if r := s.api("GET", "/api/v1/cart", alice, nil); r.code != http.StatusOK {
				t.Fatalf("request %d: %d %s", i, r.code, r.body)
			}
		}
		r := s.api("GET", "/api/v1/cart", alice, nil)
		if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("past the limit: %d Retry-After=%q %s", r.code, r.header.Get("Retry-After"), r.body)
		}
		if e := r.json(t)["error"].(map[string]any); e["status"] != "RESOURCE_EXHAUSTED" {
			t.Errorf("error body %v", e)
		}
		if r := s.api("GET", "/api/v1/cart", bob, nil); r.code != http.StatusOK {
			t.Fatalf("another user is limited too: %d", r.code)
		}
	})
	t.Run("per IP", func(t *testing.T) {
		s := startShop(t, shopOptions{tweak: func(c *gateway.Config) { c.IPRate, c.IPBurst = 0.01, 5 }})
		var codes []int
		for range 6 {
			codes = append(codes, s.api("GET", "/api/v1/categories", "", nil).code)
		}
		if !slices.Equal(codes, []int{200, 200, 200, 200, 200, 429}) {
			t.Fatalf("codes %v", codes)
		}
		// Health and metrics stay reachable for probes.
		if r := s.api("GET", "/healthz", "", nil); r.code != http.StatusOK {
			t.Fatalf("healthz while limited: %d", r.code)
		}
		if r := s.api("GET", "/metrics", "", nil); !strings.Contains(string(r.body), "gateway_rate_limited") {
			t.Fatalf("metrics lack the rejection counter: %.400s", r.body)
		}
	})
}

func TestValidationNamesTheField(t *testing.T) {
	s := startShop(t, shopOptions{})
	alice := s.token("alice")
	tests := []struct {
		method, path string
		body         any
		field        string
	}{
		{"POST", "/api/v1/cart/items", map[string]any{"productId": "Not A Slug!", "quantity": 1}, "product_id"},
		{"POST", "/api/v1/cart/items", map[string]any{"productId": "french-press", "quantity": 1000}, "quantity"},
		{"GET", "/api/v1/orders/not-a-uuid", nil, "order_id"},
		{"GET", "/api/v1/orders/not-a-uuid/events", nil, "order_id"},
		{"POST", "/api/v1/orders", map[string]any{"idempotencyKey": "short", "items": []any{}, "paymentToken": "visa"}, "idempotency_key"},
		{"GET", "/api/v1/search/products?query=", nil, "query"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path+" "+tc.field, func(t *testing.T) {
			r := s.api(tc.method, tc.path, alice, tc.body)
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			var body struct {
				Error struct {
					Code   int
					Status string
					Fields []struct{ Field, Description string }
				}
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Error.Code != 400 || body.Error.Status != "INVALID_ARGUMENT" {
				t.Errorf("error %+v", body.Error)
			}
			found := false
			for _, f := range body.Error.Fields {
				found = found || (f.Field == tc.field && f.Description != "")
			}
			if !found {
				t.Fatalf("no violation for %s in %s", tc.field, r.body)
			}
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		if r := s.api("POST", "/api/v1/cart/items", alice, `{"productId":`); r.code != http.StatusBadRequest {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
	})
}

func TestOversizedBody(t *testing.T) {
	s := startShop(t, shopOptions{tweak: func(c *gateway.Config) { c.MaxBodyBytes = 1024 }})
	alice := s.token("alice")
	big := fmt.Sprintf(`{"productId":"french-press","quantity":1,"pad":%q}`, strings.Repeat("x", 4096))
	if r := s.api("POST", "/api/v1/cart/items", alice, big); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared length: %d %s", r.code, r.body)
	}
	// Without a Content-Length the cap trips while the body is read.
	req, _ := http.NewRequest("POST", s.url+"/api/v1/cart/items", strings.NewReader(big))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Content-Type", "application/json")
	if r := s.do(http.DefaultClient, req); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d %s", r.code, r.body)
	}
}

func TestUnknownRoute(t *testing.T) {
	s := startShop(t, shopOptions{without: []string{"order", "payment", "inventory", "shipping"}})
	if r := s.api("GET", "/api/v1/nope", "", nil); r.code != http.StatusNotFound || r.json(t)["error"] == nil {
		t.Fatalf("unknown route: %d %s", r.code, r.body)
	}
	// A service missing from the deployment answers 503, never fake data.
	alice := s.token("alice")
	if r := s.api("GET", "/api/v1/orders", alice, nil); r.code != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "order") {
		t.Fatalf("undeployed order service: %d %s", r.code, r.body)
	}
}

func TestSecurityHeadersAndCORS(t *testing.T) {
	s := startShop(t, shopOptions{
		without: []string{"order", "payment", "inventory", "shipping", "cart"},
		tweak:   func(c *gateway.Config) { c.CORSOrigins = "https://app.example" },
	})
	r := s.api("GET", "/", "", nil)
	for h, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "strict-origin-when-cross-origin",
		"X-Frame-Options":         "DENY",
	} {
		if !strings.Contains(r.header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, r.header.Get(h), want)
		}
	}
	if strings.Contains(r.header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Error("CSP allows inline code")
	}

	preflight := func(origin string) response {
		req, _ := http.NewRequest("OPTIONS", s.url+"/api/v1/cart", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		return s.do(http.DefaultClient, req)
	}
	if r := preflight("https://app.example"); r.code != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight: %d %v", r.code, r.header)
	}
	if r := preflight("https://evil.example"); r.code != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", r.code, r.header)
	}
	req, _ := http.NewRequest("GET", s.url+"/api/v1/categories", nil)
	req.Header.Set("Origin", "https://app.example")
	if r := s.do(http.DefaultClient, req); r.header.Get("Access-Control-Allow-Origin") != "https://app.example" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("simple CORS request: %v", r.header)
	}
}

func TestReadinessFollowsUpstreams(t *testing.T) {
	s := startShop(t, shopOptions{})
	if r := s.api("GET", "/healthz", "", nil); r.code != http.StatusOK {
		t.Fatalf("healthz: %d", r.code)
	}
	poll.Until(t, "ready", func() bool { return s.api("GET", "/readyz", "", nil).code == http.StatusOK })
	s.stop["catalog"]()
	r := s.api("GET", "/readyz", "", nil)
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the catalog stopped: %d %s", r.code, r.body)
	}
	var body struct {
		Ready     bool
		Upstreams []struct{ Name, Status string }
	}
	json.Unmarshal(r.body, &body)
	for _, u := range body.Upstreams {
		if (u.Name == "catalog") == (u.Status == "SERVING") {
			t.Errorf("upstream %s reported %s", u.Name, u.Status)
		}
	}
	if r := s.api("GET", "/metrics", "", nil); r.code != http.StatusOK || !strings.Contains(string(r.body), "gateway_request_duration_seconds") || !strings.Contains(string(r.body), "http_server_request_duration_seconds") {
		t.Fatalf("metrics: %d %.300s", r.code, r.body)
	}
}
