package gateway_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	// The order page reloads itself when the order settles; a capture caught in that
	// navigation can wait forever, so each attempt is bounded and retried.
	var png []byte
	var err error
	for attempt := 1; attempt <= 3 && s.ctx.Err() == nil; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			break
		}
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

// TestBrowserShopping drives headless Chromium through the storefront: log in at the
// issuer, search, fill the cart, check out with an approved card and watch the saga
// complete, then a declined card that ends Cancelled with its reason.
func TestBrowserShopping(t *testing.T) {
	exe := chromiumPath(t)
	s := startShop(t, shopOptions{})

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

	addToCart := func(query, product string) {
		t.Helper()
		step(t, ctx, "search "+query,
			chromedp.SendKeys(chromedp.CSS("#search"), query),
			chromedp.Submit(chromedp.CSS("#search")),
			chromedp.WaitVisible(chromedp.CSS(`li[data-product="`+product+`"]`)),
		)
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
	sh.shot("order-completed")

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
}
