package gateway_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/poll"
)

func contains(t *testing.T, r response, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(string(r.body), w) {
			t.Errorf("page (%d) lacks %q:\n%.2000s", r.code, w, r.body)
		}
	}
}

func TestPublicPages(t *testing.T) {
	s := startShop(t, shopOptions{without: []string{"order", "payment", "shipping", "cart"}})
	anon := &browser{s: s, c: http.DefaultClient}

	home := anon.get("/")
	contains(t, home, "<title>eventshop</title>", `rel="icon" href="/static/favicon.svg"`, "Categories", `href="/products?category=coffee"`, "/static/products/", `href="/auth/login?next=%2f"`)
	// No order service, so no best sellers: the curated list, in its order.
	featuredInOrder(t, home, gateway.CuratedFeatured...)

	search := anon.get("/products?q=espresso")
	contains(t, search, "Results for", "Espresso Machine Duo", `maxlength="100" value="espresso">`)
	// The box keeps the query, escaped.
	contains(t, anon.get("/products?q=%22%3E%3Cb%3E"), `value="&#34;&gt;&lt;b&gt;"`)
	if strings.Contains(string(search.body), "unavailable") {
		t.Error("search page says something is unavailable")
	}
	contains(t, anon.get("/products?q=zzzz-nothing"), "No products found")

	first := anon.get("/products")
	contains(t, first, "All products", `id="next-page"`)
	next := regexp.MustCompile(`id="next-page" href="([^"]+)"`).FindSubmatch(first.body)
	if next == nil {
		t.Fatal("no next page link")
	}
	second := anon.get(strings.ReplaceAll(string(next[1]), "&amp;", "&"))
	contains(t, second, "First page")
	if second.code != http.StatusOK || string(second.body) == string(first.body) {
		t.Fatalf("second page: %d", second.code)
	}

	product := anon.get("/products/espresso-machine")
	contains(t, product, "<title>Espresso Machine Duo · eventshop</title>", "Espresso Machine Duo", "$899.00", "Log in</a> to add this to your cart")
	if r := anon.get("/products/no-such-thing"); r.code != http.StatusNotFound {
		t.Errorf("unknown product: %d", r.code)
	}

	img := anon.get("/static/products/espresso-machine.svg")
	if img.code != http.StatusOK || img.header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(img.body), `viewBox="0 0 320 240"`) {
		t.Errorf("product image: %d %s %s", img.code, img.header.Get("Content-Type"), img.body)
	}
	if dir := anon.get("/static/products/"); dir.code != http.StatusNotFound {
		t.Errorf("directory listing of the product images: %d", dir.code)
	}
	if icon := anon.get("/favicon.ico"); icon.code != http.StatusOK || icon.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("favicon: %d %s", icon.code, icon.header.Get("Content-Type"))
	}
	if r := anon.get("/static/order.js"); r.code != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Errorf("order.js: %d %s", r.code, r.header.Get("Content-Type"))
	}

	// Pages that need a user send anonymous visitors to log in.
	c := *http.DefaultClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", s.url+"/orders", nil)
	if r := s.do(&c, req); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/auth/login?next=") {
		t.Errorf("anonymous /orders: %d %s", r.code, r.header.Get("Location"))
	}
}

func TestLoginCartAndCSRF(t *testing.T) {
	s := startShop(t, shopOptions{})
	b := s.login("alice")
	contains(t, b.get("/"), "Alice Example", "Log out")

	token := b.csrf()
	add := url.Values{"product_id": {"french-press"}, "quantity": {"2"}}

	t.Run("no token", func(t *testing.T) {
		if r := b.post("/cart/items", add); r.code != http.StatusForbidden {
			t.Fatalf("status %d", r.code)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		f := url.Values{"csrf_token": {"forged"}}
		for k, v := range add {
			f[k] = v
		}
		if r := b.post("/cart/items", f); r.code != http.StatusForbidden {
			t.Fatalf("status %d", r.code)
		}
	})
	t.Run("another session's token", func(t *testing.T) {
		bob := s.login("bob")
		f := url.Values{"csrf_token": {bob.csrf()}}
		for k, v := range add {
			f[k] = v
		}
		if r := b.post("/cart/items", f); r.code != http.StatusForbidden {
			t.Fatalf("status %d", r.code)
		}
	})
	contains(t, b.get("/cart"), "Your cart is empty")

	f := url.Values{"csrf_token": {token}}
	for k, v := range add {
		f[k] = v
	}
	if r := b.post("/cart/items", f); r.code != http.StatusSeeOther {
		t.Fatalf("add with the token: %d %s", r.code, r.body)
	}
	contains(t, b.get("/cart"), "French Press 1 L", "Added to your cart", `value="2"`)

	if r := b.post("/cart/items/french-press", url.Values{"csrf_token": {token}, "quantity": {"5"}}); r.code != http.StatusSeeOther {
		t.Fatalf("update: %d", r.code)
	}
	contains(t, b.get("/cart"), `value="5"`)
	if r := b.post("/cart/items/french-press", url.Values{"csrf_token": {token}, "quantity": {"500"}}); r.code != http.StatusSeeOther {
		t.Fatalf("bad update: %d", r.code)
	}
	contains(t, b.get("/cart"), "Your cart was not changed", "quantity")
	if r := b.post("/cart/items/french-press/remove", url.Values{"csrf_token": {token}}); r.code != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.code)
	}
	contains(t, b.get("/cart"), "Your cart is empty")

	// Logout needs the token too, and ends the session.
	if r := b.post("/auth/logout", nil); r.code != http.StatusForbidden {
		t.Fatalf("logout without token: %d", r.code)
	}
	if r := b.post("/auth/logout", url.Values{"csrf_token": {token}}); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.code)
	}
	if r := b.post("/cart/items", f); r.code != http.StatusForbidden {
		t.Fatalf("add after logout: %d", r.code)
	}
}

func TestSessionCookieFlags(t *testing.T) {
	s := startShop(t, shopOptions{without: []string{"order", "payment", "inventory", "shipping"}})
	b := s.login("alice")
	u, _ := url.Parse(s.url)
	var found bool
	for _, c := range b.c.Jar.Cookies(u) {
		found = found || c.Name == "eventshop_session"
	}
	if !found {
		t.Fatal("no session cookie")
	}
	// The jar hides attributes: read them from a fresh callback-less response.
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", s.url+"/auth/login", nil)
	r := s.do(&c, req)
	sc := r.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("login cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("cookie over plain HTTP is Secure: %q", sc)
	}
	loc, _ := url.Parse(r.header.Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Errorf("authorization request lacks PKCE/state/nonce: %s", loc)
	}
}

func TestCheckoutAndOrderPages(t *testing.T) {
	s := startShop(t, shopOptions{})
	b := s.login("alice")
	token := b.csrf()
	for _, p := range []string{"espresso-machine", "burr-grinder"} {
		if r := b.post("/cart/items", url.Values{"csrf_token": {token}, "product_id": {p}, "quantity": {"1"}}); r.code != http.StatusSeeOther {
			t.Fatalf("add %s: %d", p, r.code)
		}
	}
	checkout := b.get("/checkout")
	contains(t, checkout, "Shipping address", "tok_visa", "tok_chargeDeclined", "Espresso Machine Duo")
	key := regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`).FindSubmatch(checkout.body)
	if key == nil {
		t.Fatal("no idempotency key")
	}
	form := url.Values{
		"csrf_token": {token}, "idempotency_key": {string(key[1])},
		"name": {"Alice Example"}, "street": {"1 Main St"}, "city": {"Springfield"}, "postal_code": {"12345"}, "country_code": {"US"},
		"card": {"tok_visa"},
	}
	form.Set("action", "quote")
	contains(t, b.post("/checkout", form), `id="shipping-quote"`)

	form.Set("action", "place")
	r := b.post("/checkout", form)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/orders/") {
		t.Fatalf("place: %d %s %s", r.code, r.header.Get("Location"), r.body)
	}
	orderPath := r.header.Get("Location")
	contains(t, b.get("/cart"), "Your cart is empty")
	// Submitting the same form again does not place a second order.
	if again := b.post("/checkout", form); again.code == http.StatusSeeOther {
		t.Fatalf("second submit placed an order: %s", again.header.Get("Location"))
	}

	poll.Until(t, "order page with the order", func() bool {
		return strings.Contains(string(b.get(orderPath).body), `id="order-status"`)
	})
	page := b.get(orderPath)
	contains(t, page, "Event history", "View at this point", "Espresso Machine Duo")
	// The live script comes with an order that can still change; the saga may have
	// finished it already.
	if live := strings.Contains(string(page.body), `data-live="true"`); live != strings.Contains(string(page.body), `src="/static/order.js"`) {
		t.Errorf("order page: live %v but the live script %v", live, !live)
	}
	contains(t, b.get(orderPath+"?version=1"), `id="timetravel"`, "Pending")
	contains(t, b.get("/orders"), strings.TrimPrefix(orderPath, "/orders/"))

	// The live stream reports each status as a server-sent event, and ends after
	// the final one.
	req, _ := http.NewRequest("GET", s.url+orderPath+"/events", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := string(stream)
	if err != nil {
		t.Fatalf("event stream: %v after %q", err, got)
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(got, "event: status") || !strings.Contains(got, `"label":`) {
		t.Fatalf("event stream %s: %q", resp.Header.Get("Content-Type"), got)
	}
	if events := strings.Split(strings.TrimSpace(got), "\n\n"); !strings.Contains(events[len(events)-1], `"terminal":true`) {
		t.Fatalf("event stream ended before the order was final: %q", got)
	}

	// The order sold a grinder and an espresso machine, one each: the home page
	// features them first (same units: by id), then the curated list.
	featuredInOrder(t, b.get("/"), "burr-grinder", "espresso-machine", "wireless-headphones", "camping-tent")

	// Bob sees nothing of alice's order, on the page or the stream.
	bob := s.login("bob")
	if r := bob.get(orderPath); strings.Contains(string(r.body), "Espresso Machine Duo") {
		t.Fatalf("bob sees alice's order page")
	}
	if r := bob.get(orderPath + "/events"); r.code != http.StatusNotFound || strings.Contains(string(r.body), "event:") {
		t.Fatalf("bob's event stream of alice's order: %d %q, want 404", r.code, r.body)
	}
	if r := bob.post(orderPath+"/cancel", url.Values{"csrf_token": {bob.csrf()}}); r.code == http.StatusSeeOther {
		contains(t, b.get(orderPath), `id="order-status"`)
		if strings.Contains(string(b.get(orderPath).body), "cancelled by the customer") {
			t.Fatal("bob cancelled alice's order")
		}
	}
}

func TestAdminPage(t *testing.T) {
	s := startShop(t, shopOptions{})
	alice := s.login("alice")
	if r := alice.get("/admin"); r.code != http.StatusForbidden {
		t.Fatalf("alice on /admin: %d", r.code)
	}
	// A completed order feeds the sales read model behind the chart.
	tok := s.token("alice")
	id := s.placeOrder(tok, "admin-page-1")
	poll.Until(t, "order completed", func() bool {
		return strings.Contains(string(s.api("GET", "/api/v1/orders/"+id, tok, nil).body), "ORDER_STATUS_COMPLETED")
	})
	admin := s.login("admin")
	poll.Until(t, "sales on the admin page", func() bool {
		return strings.Contains(string(admin.get("/admin").body), `id="sales-chart"`)
	})
	contains(t, admin.get("/admin"), "Sales by product", "Stock", "espresso-machine", `class="chart-bar"`, "Espresso Machine Duo")
	token := admin.csrf()
	if r := admin.post("/admin/stock", url.Values{"csrf_token": {token}, "product_id": {"french-press"}, "available": {"7"}}); r.code != http.StatusSeeOther {
		t.Fatalf("set stock: %d", r.code)
	}
	contains(t, admin.get("/admin"), "Stock of french-press set to 7")
	if r := alice.post("/admin/stock", url.Values{"csrf_token": {alice.csrf()}, "product_id": {"french-press"}, "available": {"1"}}); r.code != http.StatusForbidden {
		t.Fatalf("alice set stock: %d", r.code)
	}
}

// TestPagesDegrade: with a service down or absent, its part of a page says so and
// the rest keeps working.
func TestPagesDegrade(t *testing.T) {
	s := startShop(t, shopOptions{without: []string{"cart"}})
	b := s.login("alice")
	contains(t, b.get("/cart"), `data-service="cart"`, "The cart service is unavailable")
	contains(t, b.get("/products?q=espresso"), "Espresso Machine Duo")

	s.stop["order"]()
	contains(t, b.get("/orders"), `data-service="order"`)
	s.stop["inventory"]()
	product := b.get("/products/espresso-machine")
	contains(t, product, `data-service="inventory"`, "Espresso Machine Duo")
	admin := s.login("admin")
	contains(t, admin.get("/admin"), `data-service="inventory"`, `data-service="order"`)

	s.stop["catalog"]()
	home := b.get("/")
	contains(t, home, `data-service="catalog"`, "Welcome to eventshop")
}

// featuredInOrder checks that the products the page features begin with ids, in
// this order.
func featuredInOrder(t *testing.T, page response, ids ...string) {
	t.Helper()
	got := regexp.MustCompile(`data-product="([^"]+)"`).FindAllStringSubmatch(string(page.body), -1)
	var featured []string
	for _, m := range got {
		featured = append(featured, m[1])
	}
	if len(featured) < len(ids) || !slices.Equal(featured[:len(ids)], ids) {
		t.Fatalf("home page features %v, want %v first", featured, ids)
	}
}
