package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/services/cart"
	"github.com/eventshop/eventshop/services/catalog"
	"github.com/eventshop/eventshop/services/inventory"
	"github.com/eventshop/eventshop/services/order"
	"github.com/eventshop/eventshop/services/payment"
	"github.com/eventshop/eventshop/services/shipping"
)

// shop is a gateway in front of the real services, each on its own loopback port,
// with embedded JetStream and the dev OIDC issuer.
type shop struct {
	t      testing.TB
	issuer *devissuer.Issuer
	gw     *gateway.Gateway
	url    string
	// stop ends one service's Run (by upstream name), for readiness and
	// degradation tests.
	stop map[string]func()
	// addrs are the upstream gRPC addresses by name.
	addrs map[string]string
	order *order.Service
	// js reaches the test's JetStream (the sessions bucket with natsSessions).
	js jetstream.JetStream
	// newGateway builds a gateway on lis with the shop's configuration.
	newGateway func(lis net.Listener) (*gateway.Gateway, error)
	run        func(name string, r func(context.Context) error)
}

// restartGateway stops the gateway and starts a new one on the same address.
func (s *shop) restartGateway() {
	s.t.Helper()
	s.stop["gateway"]()
	lis, err := net.Listen("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		s.t.Fatal(err)
	}
	if s.gw, err = s.newGateway(lis); err != nil {
		s.t.Fatal(err)
	}
	s.run("gateway", s.gw.Run)
}

type shopOptions struct {
	// without lists services not deployed (their address stays empty).
	without []string
	// tweak edits the gateway's config before New.
	tweak func(*gateway.Config)
	// listenItself lets the gateway open its own listener on the address picked
	// for it (as the binary does), instead of being handed one.
	listenItself bool
	// accessTTL is the issuer's access token lifetime (its default when zero).
	accessTTL time.Duration
	// natsSessions keeps the storefront's sessions in JetStream (Deps.JetStream).
	natsSessions bool
}

// defaults returns a service Config as its flags would set it, for fields a test
// does not care about.
func defaults[C any](register func(*C, *flag.FlagSet)) C {
	var c C
	fs := flag.NewFlagSet("defaults", flag.ContinueOnError)
	register(&c, fs)
	return c
}

func startShop(t testing.TB, opts shopOptions) *shop {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := &shop{t: t, stop: map[string]func(){}}
	skip := map[string]bool{}
	for _, w := range opts.without {
		skip[w] = true
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwURL := "http://" + lis.Addr().String()
	clients := devissuer.DefaultClients()
	for i := range clients {
		if clients[i].ID == "storefront" {
			clients[i].RedirectURIs = []string{gwURL + "/auth/callback"}
		}
	}
	s.issuer, err = devissuer.Start(ctx, devissuer.Config{Clients: clients, Logger: logger, AccessTokenTTL: opts.accessTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.issuer.Close() })
	vc := auth.VerifierConfig{Issuer: s.issuer.URL(), Audience: s.issuer.Audience()}
	if opts.accessTTL > 0 {
		vc.Leeway = 100 * time.Millisecond // so a test sees expiry soon after accessTTL
	}
	verifier, err := auth.NewVerifier(ctx, vc)
	if err != nil {
		t.Fatal(err)
	}
	_, nc := natstest.Connect(t)
	dir := t.TempDir()

	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	run := func(name string, r func(context.Context) error) {
		rctx, cancel := context.WithCancel(ctx)
		var once sync.Once
		done := make(chan struct{})
		s.stop[name] = func() { once.Do(cancel); <-done }
		t.Cleanup(s.stop[name])
		wg.Go(func() {
			defer close(done)
			if err := r(rctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}

	cat, err := catalog.New(ctx, catalog.Config{GRPCAddr: "127.0.0.1:0"}, catalog.Deps{Logger: logger, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	run("catalog", cat.Run)
	catAddr := cat.Addr().String()
	gcfg := gateway.Config{
		HTTPAddr:         "127.0.0.1:0",
		CatalogAddr:      catAddr,
		OIDCIssuer:       s.issuer.URL(),
		OIDCClientID:     "storefront",
		OIDCClientSecret: "storefront-secret",
		IPRate:           1000,
		IPBurst:          1000,
		UserRate:         1000,
		UserBurst:        1000,
	}

	if !skip["shipping"] {
		c := defaults(func(c *shipping.Config, fs *flag.FlagSet) { c.RegisterFlags(fs) })
		c.GRPCAddr, c.CatalogAddr, c.DBDSN = "127.0.0.1:0", catAddr, filepath.Join(dir, "shipping.db")
		svc, err := shipping.New(context.Background(), c, shipping.Deps{Logger: logger, Verifier: verifier, NATS: nc})
		if err != nil {
			t.Fatal(err)
		}
		run("shipping", svc.Run)
		gcfg.ShippingAddr = svc.Addr().String()
	}
	if !skip["cart"] {
		c := defaults(func(c *cart.Config, fs *flag.FlagSet) { c.RegisterFlags(fs) })
		c.GRPCAddr, c.CatalogAddr = "127.0.0.1:0", catAddr
		svc, err := cart.New(ctx, c, cart.Deps{Logger: logger, Verifier: verifier, NATS: nc})
		if err != nil {
			t.Fatal(err)
		}
		run("cart", svc.Run)
		gcfg.CartAddr = svc.Addr().String()
	}
	if !skip["order"] {
		c := defaults(func(c *order.Config, fs *flag.FlagSet) { c.RegisterFlags(fs) })
		c.GRPCAddr, c.CatalogAddr, c.ShippingAddr, c.ReadDSN = "127.0.0.1:0", catAddr, gcfg.ShippingAddr, filepath.Join(dir, "orders.db")
		svc, err := order.New(ctx, c, order.Deps{Logger: logger, Verifier: verifier, NATS: nc})
		if err != nil {
			t.Fatal(err)
		}
		run("order", svc.Run)
		gcfg.OrderAddr = svc.Addr().String()
		s.order = svc
	}
	if !skip["payment"] {
		c := defaults(func(c *payment.Config, fs *flag.FlagSet) { c.RegisterFlags(fs) })
		c.GRPCAddr, c.DBDSN = "127.0.0.1:0", filepath.Join(dir, "payment.db")
		svc, err := payment.New(context.Background(), c, payment.Deps{Logger: logger, Verifier: verifier, NATS: nc})
		if err != nil {
			t.Fatal(err)
		}
		run("payment", svc.Run)
		gcfg.PaymentAddr = svc.Addr().String()
	}
	if !skip["inventory"] {
		c := defaults(func(c *inventory.Config, fs *flag.FlagSet) { c.RegisterFlags(fs) })
		c.GRPCAddr, c.CatalogAddr, c.DBDSN = "127.0.0.1:0", catAddr, filepath.Join(dir, "inventory.db")
		svc, err := inventory.New(context.Background(), c, inventory.Deps{Logger: logger, Verifier: verifier, NATS: nc})
		if err != nil {
			t.Fatal(err)
		}
		run("inventory", svc.Run)
		gcfg.InventoryAddr = svc.Addr().String()
	}
	if skip["catalog"] {
		gcfg.CatalogAddr = ""
	}
	if opts.tweak != nil {
		opts.tweak(&gcfg)
	}
	s.addrs = map[string]string{"catalog": gcfg.CatalogAddr, "cart": gcfg.CartAddr, "order": gcfg.OrderAddr,
		"payment": gcfg.PaymentAddr, "inventory": gcfg.InventoryAddr, "shipping": gcfg.ShippingAddr}
	deps := gateway.Deps{Logger: logger, Verifier: verifier}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s.js = js
	if opts.natsSessions {
		deps.JetStream = js
	}
	if s.order != nil {
		deps.Operations = &gateway.Operations{StuckSagas: s.order.StuckSagas, DeadLetters: messaging.NewDeadLetters(js)}
	}
	s.newGateway = func(lis net.Listener) (*gateway.Gateway, error) {
		d := deps
		d.Listener = lis
		return gateway.New(ctx, gcfg, d)
	}
	s.run = run
	if opts.listenItself {
		gcfg.HTTPAddr = lis.Addr().String()
		lis.Close()
		s.gw, err = gateway.New(ctx, gcfg, deps)
	} else {
		s.gw, err = s.newGateway(lis)
	}
	if err != nil {
		t.Fatal(err)
	}
	run("gateway", s.gw.Run)
	s.url = s.gw.URL()
	if s.url != gwURL {
		t.Fatalf("gateway URL %s, want %s", s.url, gwURL)
	}
	return s
}

// gwUpstream is the address of a running upstream.
func (s *shop) gwUpstream(t testing.TB, name string) string {
	t.Helper()
	if s.addrs[name] == "" {
		t.Fatalf("%s is not running", name)
	}
	return s.addrs[name]
}

// token logs a demo user in through the issuer (authorization code + PKCE).
func (s *shop) token(user string, scopes ...string) string {
	s.t.Helper()
	tok, err := s.issuer.Login(context.Background(), user, user+"-password", scopes...)
	if err != nil {
		s.t.Fatalf("login %s: %v", user, err)
	}
	return tok
}

// response is a finished HTTP exchange.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	return m
}

// api sends one request to the gateway; body is JSON-encoded unless it is a string.
func (s *shop) api(method, path, token string, body any) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(http.DefaultClient, req)
}

func (s *shop) do(c *http.Client, req *http.Request) response {
	s.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// browser is an HTTP client with a cookie jar, logged in to the storefront through
// the real login flow: gateway -> issuer login form -> gateway callback.
type browser struct {
	s *shop
	c *http.Client
}

var authRequestID = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

func (s *shop) login(user string) *browser {
	s.t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{s: s, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	page := b.get("/auth/login?next=/cart")
	if page.code != http.StatusOK {
		s.t.Fatalf("login page: %d %s", page.code, page.body)
	}
	m := authRequestID.FindSubmatch(page.body)
	if m == nil {
		s.t.Fatalf("no login form in %s", page.body)
	}
	form := url.Values{"authRequestID": {string(m[1])}, "username": {user}, "password": {user + "-password"}}
	req, _ := http.NewRequest(http.MethodPost, s.issuer.URL()+"/login?authRequestID="+url.QueryEscape(string(m[1])), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := s.do(b.c, req)
	if done.code != http.StatusOK || !bytes.Contains(done.body, []byte("Your cart")) {
		s.t.Fatalf("after login: %d %s", done.code, done.body)
	}
	return b
}

func (b *browser) get(path string) response {
	b.s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.s.url+path, nil)
	return b.s.do(b.c, req)
}

// post submits a form without following the redirect, so the test sees the 303.
func (b *browser) post(path string, form url.Values) response {
	b.s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.s.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b.s.do(&c, req)
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the synchronizer token from a rendered page.
func (b *browser) csrf() string {
	b.s.t.Helper()
	page := b.get("/cart")
	m := csrfInput.FindSubmatch(page.body)
	if m == nil {
		b.s.t.Fatalf("no csrf token on the cart page: %s", page.body)
	}
	return string(m[1])
}

// eventually retries check until it returns true, for at most 20 seconds.
