package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium (or another Chrome) for the browser test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SHOP_TEST_BROWSER") == "1" {
		t.Fatal("SHOP_TEST_BROWSER=1 but no chromium binary on PATH (apt-get install -y --no-install-recommends chromium)")
	}
	t.Skip("no chromium binary on PATH: install it (apt-get install -y --no-install-recommends chromium) or set SHOP_TEST_BROWSER=1 to make its absence fail")
	return ""
}

// shooter saves a numbered full-page screenshot per step into the test's artifact
// directory (kept with `go test -artifacts`).
type shooter struct {
	t   *testing.T
	ctx context.Context
	dir string
	n   int
}

func (s *shooter) shot(name string) {
	s.t.Helper()
	s.n++
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 3*time.Second {
			s.t.Logf("screenshot %s took %v", name, d.Round(time.Millisecond))
		}
	}()
	// The order page reloads itself when the order settles; a capture caught in that
	// navigation can wait forever, so each attempt is bounded and retried.
	var png []byte
	var err error
	for attempt := 1; attempt <= 6 && s.ctx.Err() == nil; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond) // let the navigation finish
	}
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, strings.ReplaceAll(name, " ", "-")))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("screenshot %s", path)
}

// step runs browser actions, failing the test with the step's name.
func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 3*time.Second {
			t.Logf("step %q took %v", name, d.Round(time.Millisecond))
		}
	}()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("step %q at %s: %v\npage: %.1500s", name, loc, err, body)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// TestBrowserShopping drives headless Chromium through the storefront: the home page
// with its pictures and prices, log in at the issuer, search, fill the cart, check
// out with an approved card and watch the saga complete, restart the gateway and
// carry on logged in, then a declined card that ends Cancelled with its reason, and
// last the operator's pages as the admin.
func TestBrowserShopping(t *testing.T) {
	exe := chromiumPath(t)
	s := startShop(t, shopOptions{natsSessions: true})

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	sh := &shooter{t: t, ctx: ctx, dir: t.ArtifactDir()}

	step(t, ctx, "home", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS(".categories")))
	// Every featured picture is drawn (an SVG of the product, not a broken image),
	// and every price reads as money.
	if bad := evalString(t, ctx, `(async () => {
		const imgs = [...document.querySelectorAll(".product-card img")];
		await Promise.all(imgs.map(i => i.decode().catch(() => {})));
		if (imgs.length < 4) return "only " + imgs.length + " featured pictures";
		const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
		if (broken.length) return "not drawn: " + broken.join(", ");
		const prices = [...document.querySelectorAll(".product-card .price")].map(p => p.textContent.trim());
		const odd = prices.filter(p => !/^\$\d{1,3}(,\d{3})*\.\d{2}$/.test(p));
		return odd.length ? "prices not formatted: " + odd.join(", ") : "";
	})()`); bad != "" {
		t.Fatalf("home page: %s", bad)
	}
	sh.shot("home")

	step(t, ctx, "open the issuer's login page",
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	sh.shot("issuer-login")
	step(t, ctx, "log in as alice",
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice-password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#who")),
	)
	if who := text(t, ctx, "#who"); who != "Alice Example" {
		t.Fatalf("logged in as %q", who)
	}
	sh.shot("logged-in")

	coffee := productsIn(t, "coffee")
	step(t, ctx, "search coffee", searchFor("coffee"), chromedp.WaitVisible(chromedp.CSS(`li[data-product="`+coffee[0]+`"]`)))
	for _, id := range coffee {
		if n := evalString(t, ctx, `String(document.querySelectorAll('li[data-product="`+id+`"]').length)`); n != "1" {
			t.Fatalf("search for coffee lists %s %s times, want once (coffee products: %v)", id, n, coffee)
		}
	}
	if q := evalString(t, ctx, `document.querySelector("#search").value`); q != "coffee" {
		t.Fatalf("search box holds %q after searching coffee", q)
	}
	sh.shot("search-coffee")
	evalString(t, ctx, `document.querySelector("#search").value = ""`) // the next search types afresh

	addToCart := func(query, product string) {
		t.Helper()
		step(t, ctx, "search "+query, searchFor(query), chromedp.WaitVisible(chromedp.CSS(`li[data-product="`+product+`"]`)))
		sh.shot("search-" + query)
		step(t, ctx, "add "+product,
			chromedp.Click(chromedp.CSS(`li[data-product="`+product+`"] a`)),
			chromedp.WaitVisible(chromedp.CSS("#add-to-cart")),
			chromedp.Click(chromedp.CSS("#add-to-cart")),
			chromedp.WaitVisible(chromedp.CSS("#flash")),
		)
		if f := text(t, ctx, "#flash"); f != "Added to your cart." {
			t.Fatalf("after adding %s: %q", product, f)
		}
	}

	checkout := func(card string) string {
		t.Helper()
		step(t, ctx, "cart", chromedp.Click(chromedp.CSS("#nav-cart")), chromedp.WaitVisible(chromedp.CSS("#checkout")))
		sh.shot("cart-" + card)
		step(t, ctx, "checkout form",
			chromedp.Click(chromedp.CSS("#checkout")),
			chromedp.WaitVisible(chromedp.CSS("#checkout-form")),
			chromedp.SendKeys(chromedp.CSS("#street"), "1 Main St"),
			chromedp.SendKeys(chromedp.CSS("#city"), "Springfield"),
			chromedp.SendKeys(chromedp.CSS("#postal_code"), "12345"),
			chromedp.Click(chromedp.CSS("#quote")),
			chromedp.WaitVisible(chromedp.CSS("#shipping-quote")),
			chromedp.Click(chromedp.CSS("#card-"+card)),
		)
		label := evalString(t, ctx, `document.querySelector("#card-`+card+`").closest("label").textContent`)
		if want := map[string]string{"tok_visa": "Visa", "tok_chargeDeclined": "Card declined"}[card]; !strings.Contains(label, want) {
			t.Fatalf("card %s is offered as %q, want a label saying %q", card, label, want)
		}
		sh.shot("checkout-" + card)
		step(t, ctx, "place order with "+card,
			chromedp.Click(chromedp.CSS("#place-order")),
			chromedp.WaitVisible(chromedp.CSS("#order-status")),
		)
		sh.shot("order-placed-" + card)
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc[strings.LastIndex(loc, "/")+1:]
	}

	// waitStatus waits on the live page (no reload by the test) for the status.
	waitStatus := func(want string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](
			`document.querySelector("#order-status") !== null && document.querySelector("#order-status").textContent.trim() === `+fmt.Sprintf("%q", want),
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second)))
		if err != nil {
			// A navigation (the page reloads itself once the order settles) ends a
			// poll; the status is then read from the reloaded page.
			if waitErr := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#order-status"))); waitErr == nil && text(t, ctx, "#order-status") == want {
				return
			}
			got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#order-status")))
			hist, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
			sh.shot("stuck-" + strings.ToLower(want))
			t.Fatalf("order never showed %s (status %q): %v\n%.1500s", want, got, err, hist)
		}
	}

	addToCart("espresso", "espresso-machine")
	addToCart("grinder", "burr-grinder")
	paid := checkout("tok_visa")
	waitStatus("Completed")
	step(t, ctx, "history after completion", chromedp.WaitVisible(chromedp.CSS("#history")))
	if hist := text(t, ctx, "#history"); !strings.Contains(hist, "Payment authorized") || strings.Contains(hist, "eventshop.") {
		t.Fatalf("event history does not read as events a shopper knows:\n%s", hist)
	}
	if n := evalString(t, ctx, `String(document.querySelectorAll("#history code.id + button.copy").length)`); n == "0" {
		t.Fatal("event history shows no shortened, copyable ids")
	}
	sh.shot("order-completed")

	// A deploy restarts the gateway: the shopper stays logged in.
	s.restartGateway()
	step(t, ctx, "orders after the gateway restarted",
		chromedp.Navigate(s.url+"/orders"),
		chromedp.WaitVisible(chromedp.CSS("#who")),
	)
	if who := text(t, ctx, "#who"); who != "Alice Example" {
		t.Fatalf("after the gateway restarted the page shows %q", who)
	}

	step(t, ctx, "order history",
		chromedp.Click(chromedp.CSS("#nav-orders")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-order="`+paid+`"]`)),
	)
	if st := text(t, ctx, `tr[data-order="`+paid+`"] .status`); st != "Completed" {
		t.Fatalf("order history shows %q for the paid order", st)
	}
	sh.shot("order-history")

	addToCart("french press", "french-press")
	checkout("tok_chargeDeclined")
	waitStatus("Cancelled")
	step(t, ctx, "cancel reason", chromedp.WaitVisible(chromedp.CSS("#cancel-reason")))
	if reason := text(t, ctx, "#cancel-reason"); !strings.Contains(strings.ToLower(reason), "declined") {
		t.Fatalf("cancel reason %q does not say the card was declined", reason)
	}
	sh.shot("order-cancelled")

	// The home page now features what sold, best sellers first (the sales
	// projection catches up within moments).
	var firstTwo string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		step(t, ctx, "home after the sale", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS(".product-card")))
		firstTwo = evalString(t, ctx, `[...document.querySelectorAll(".product-card")].slice(0, 2).map(c => c.dataset.product).sort().join(" ")`)
		if firstTwo == "burr-grinder espresso-machine" {
			break
		}
	}
	if firstTwo != "burr-grinder espresso-machine" {
		t.Fatalf("home features %q first, want the two products sold", firstTwo)
	}
	sh.shot("home-best-sellers")

	// The operator's pages, as the admin.
	step(t, ctx, "log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	step(t, ctx, "log in as admin",
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), "admin-password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#nav-admin")),
	)
	step(t, ctx, "admin", chromedp.Click(chromedp.CSS("#nav-admin")), chromedp.WaitVisible(chromedp.CSS("#stock-table")))
	sh.shot("admin")
	step(t, ctx, "stuck sagas", chromedp.Click(chromedp.CSS("#nav-stuck-sagas")), chromedp.WaitVisible(chromedp.CSS("#no-stuck-sagas")))
	sh.shot("admin-stuck-sagas")
	step(t, ctx, "dead letters", chromedp.Click(chromedp.CSS("#nav-dead-letters")), chromedp.WaitVisible(chromedp.CSS("#no-dead-letters")))
	sh.shot("admin-dead-letters")
}

// searchFor types query into the search box and waits for its results page: the
// page before may show the same products, so waiting for a product alone could
// act on a page that is going away.
func searchFor(query string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS("#search"), query),
		chromedp.Submit(chromedp.CSS("#search")),
		until(fmt.Sprintf(`document.readyState === "complete" && new URLSearchParams(location.search).get("q") === %q && document.querySelector("#result-count") !== null`, query)),
	)
}

// until evaluates expr every 100 ms until it is true, for at most 30 s. An
// evaluation that fails because the page is navigating counts as false (chromedp's
// Poll gives up on it).
func until(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			if time.Now().After(deadline) {
				return chromedp.Void{}, fmt.Errorf("%s still false after 30s (last error: %v)", expr, err)
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// evalString runs a JavaScript expression (awaiting a promise) in the page.
func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.80s: %v", expr, err)
	}
	return got
}

// productsIn lists the ids of the catalog's products in category.
func productsIn(t *testing.T, category string) []string {
	t.Helper()
	raw, err := os.ReadFile("../services/catalog/productfile/products.json")
	if err != nil {
		t.Fatal(err)
	}
	var products []struct {
		ID         string   `json:"id"`
		Categories []string `json:"categories"`
	}
	if err := json.Unmarshal(raw, &products); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range products {
		if slices.Contains(p.Categories, category) {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no %s products in the catalog", category)
	}
	return ids
}
