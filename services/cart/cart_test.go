package cart_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/cart"
	"github.com/eventshop/eventshop/services/catalog"
)

// shop runs a real catalog and a real cart, on loopback ports, against an embedded
// NATS server and a dev OIDC issuer.
type shop struct {
	t           *testing.T
	issuer      *devissuer.Issuer
	verifier    *auth.Verifier
	nc          *nats.Conn
	catalogAddr string
	cart        cartv1.CartServiceClient
	catalog     catalogv1.CatalogServiceClient
	stopCatalog func()
}

func startShop(t *testing.T, mutate ...func(*cart.Config)) *shop {
	t.Helper()
	_, nc := natstest.Connect(t)
	iss, err := devissuer.Start(t.Context(), devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{Issuer: iss.URL()})
	if err != nil {
		t.Fatal(err)
	}

	cat, err := catalog.New(context.Background(), catalog.Config{GRPCAddr: "127.0.0.1:0"}, catalog.Deps{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	stopCatalog := run(t, cat.Run)

	s := &shop{
		t: t, issuer: iss, verifier: v, nc: nc,
		catalogAddr: cat.Addr().String(),
		catalog:     catalogv1.NewCatalogServiceClient(dial(t, cat.Addr().String())),
		stopCatalog: stopCatalog,
	}
	s.cart = s.startCart(mutate...)
	return s
}

// startCart starts a cart service over the shop's NATS and catalog. Several cart
// services may share one bucket, as replicas do.
func (s *shop) startCart(mutate ...func(*cart.Config)) cartv1.CartServiceClient {
	s.t.Helper()
	var cfg cart.Config
	cfg.RegisterFlags(flag.NewFlagSet("cart", flag.ContinueOnError)) // the real defaults
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.CatalogAddr = s.catalogAddr
	for _, m := range mutate {
		m(&cfg)
	}
	svc, err := cart.New(context.Background(), cfg, cart.Deps{Verifier: s.verifier, NATS: s.nc})
	if err != nil {
		s.t.Fatal(err)
	}
	run(s.t, svc.Run)
	return cartv1.NewCartServiceClient(dial(s.t, svc.Addr().String()))
}

// run starts a service's Run and returns a func that stops it and waits; the stop
// also runs at cleanup.
func run(t *testing.T, fn func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("service did not stop")
		}
	})
	t.Cleanup(stop)
	return stop
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	conn, err := resilience.Dial(addr, resilience.WithName(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// as returns a context carrying user's real access token.
func (s *shop) as(user string) context.Context {
	s.t.Helper()
	token, err := s.issuer.Login(s.t.Context(), user, user+"-password")
	if err != nil {
		s.t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(s.t.Context(), "authorization", "Bearer "+token)
}

func (s *shop) get(ctx context.Context) *cartv1.Cart {
	s.t.Helper()
	resp, err := s.cart.GetCart(ctx, &cartv1.GetCartRequest{})
	if err != nil {
		s.t.Fatalf("GetCart: %v", err)
	}
	return resp.GetCart()
}

func (s *shop) add(ctx context.Context, product string, qty int32) *cartv1.Cart {
	s.t.Helper()
	resp, err := s.cart.AddItem(ctx, &cartv1.AddItemRequest{ProductId: product, Quantity: qty})
	if err != nil {
		s.t.Fatalf("AddItem(%s, %d): %v", product, qty, err)
	}
	return resp.GetCart()
}

func (s *shop) price(id string) int64 {
	s.t.Helper()
	resp, err := s.catalog.GetProduct(s.t.Context(), &catalogv1.GetProductRequest{Id: id})
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.GetProduct().GetPrice().GetMinorUnits()
}

func lines(c *cartv1.Cart) map[string]int32 {
	m := make(map[string]int32)
	for _, it := range c.GetItems() {
		m[it.GetProductId()] = it.GetQuantity()
	}
	return m
}

func wantStatus(t *testing.T, err error, code codes.Code, mention string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || !strings.Contains(st.Message(), mention) {
		t.Fatalf("got %v %q, want %v mentioning %q", st.Code(), st.Message(), code, mention)
	}
}

// unchanged fails the test if the cart differs from before in any way, update time
// included: a rejected request must write nothing.
func unchanged(t *testing.T, before, after *cartv1.Cart) {
	t.Helper()
	if !proto.Equal(before, after) {
		t.Fatalf("cart changed by a rejected request:\nbefore %v\nafter  %v", before, after)
	}
}

func TestCartLifecycle(t *testing.T) {
	s := startShop(t)
	alice := s.as("alice")

	if c := s.get(alice); len(c.GetItems()) != 0 || c.GetSubtotal() != nil {
		t.Fatalf("new cart = %v, want empty without subtotal", c)
	}

	s.add(alice, "french-press", 2)
	s.add(alice, "french-press", 1)
	c := s.add(alice, "headlamp", 1)
	if got := lines(c); got["french-press"] != 3 || got["headlamp"] != 1 || len(got) != 2 {
		t.Fatalf("lines = %v", got)
	}
	pressPrice, lampPrice := s.price("french-press"), s.price("headlamp")
	if c.GetSubtotal().GetMinorUnits() != 3*pressPrice+lampPrice || c.GetSubtotal().GetCurrencyCode() != "USD" {
		t.Fatalf("subtotal = %v, want %d USD", c.GetSubtotal(), 3*pressPrice+lampPrice)
	}
	for _, it := range c.GetItems() {
		if it.GetName() == "" || it.GetImageUrl() == "" || it.GetLineTotal().GetMinorUnits() != it.GetUnitPrice().GetMinorUnits()*int64(it.GetQuantity()) {
			t.Errorf("line not priced: %v", it)
		}
	}
	if c.GetUserId() == "" || c.GetUpdateTime() == nil {
		t.Errorf("cart lacks user or update time: %v", c)
	}

	upd, err := s.cart.UpdateItemQuantity(alice, &cartv1.UpdateItemQuantityRequest{ProductId: "french-press", Quantity: 7})
	if err != nil || lines(upd.GetCart())["french-press"] != 7 {
		t.Fatalf("UpdateItemQuantity: %v, %v", upd, err)
	}
	before := s.get(alice)
	_, err = s.cart.UpdateItemQuantity(alice, &cartv1.UpdateItemQuantityRequest{ProductId: "burr-grinder", Quantity: 1})
	wantStatus(t, err, codes.NotFound, "burr-grinder")
	unchanged(t, before, s.get(alice))

	rm, err := s.cart.RemoveItem(alice, &cartv1.RemoveItemRequest{ProductId: "headlamp"})
	if err != nil || !slices.Equal(slices.Collect(maps.Keys(lines(rm.GetCart()))), []string{"french-press"}) {
		t.Fatalf("RemoveItem: %v, %v", rm, err)
	}
	if _, err := s.cart.RemoveItem(alice, &cartv1.RemoveItemRequest{ProductId: "headlamp"}); err != nil {
		t.Fatalf("removing an absent product: %v", err)
	}

	if _, err := s.cart.EmptyCart(alice, &cartv1.EmptyCartRequest{}); err != nil {
		t.Fatal(err)
	}
	if c := s.get(alice); len(c.GetItems()) != 0 {
		t.Fatalf("after EmptyCart: %v", c)
	}
}

func TestCartsAreSeparatePerUser(t *testing.T) {
	s := startShop(t)
	alice, bob := s.as("alice"), s.as("bob")
	s.add(alice, "turntable", 1)
	s.add(bob, "camping-tent", 2)
	ca, cb := s.get(alice), s.get(bob)
	if got := lines(ca); len(got) != 1 || got["turntable"] != 1 {
		t.Errorf("alice's cart = %v", got)
	}
	if got := lines(cb); len(got) != 1 || got["camping-tent"] != 2 {
		t.Errorf("bob's cart = %v", got)
	}
	if ca.GetUserId() == cb.GetUserId() {
		t.Errorf("both carts belong to %q", ca.GetUserId())
	}
}

func TestConcurrentAddsLoseNothing(t *testing.T) {
	s := startShop(t)
	alice := s.as("alice")
	page, err := s.catalog.ListProducts(t.Context(), &catalogv1.ListProductsRequest{PageSize: 20})
	if err != nil || len(page.GetProducts()) != 20 {
		t.Fatalf("ListProducts: %v, %v", page, err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for _, p := range page.GetProducts() {
		wg.Go(func() {
			_, err := s.cart.AddItem(alice, &cartv1.AddItemRequest{ProductId: p.GetId(), Quantity: 1})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", p.GetId(), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := lines(s.get(alice))
	for _, p := range page.GetProducts() {
		if got[p.GetId()] != 1 {
			t.Errorf("%s: quantity %d, want 1", p.GetId(), got[p.GetId()])
		}
	}
	if len(got) != 20 {
		t.Errorf("%d lines, want 20", len(got))
	}
}

func TestRejectedAddsWriteNothing(t *testing.T) {
	s := startShop(t, func(c *cart.Config) { c.MaxLines = 2 })
	alice := s.as("alice")
	s.add(alice, "chef-knife", 60)
	before := s.get(alice)

	_, err := s.cart.AddItem(alice, &cartv1.AddItemRequest{ProductId: "no-such-product", Quantity: 1})
	wantStatus(t, err, codes.NotFound, "no-such-product")
	unchanged(t, before, s.get(alice))

	for _, q := range []int32{0, 101, -3} {
		_, err = s.cart.AddItem(alice, &cartv1.AddItemRequest{ProductId: "chef-knife", Quantity: q})
		wantStatus(t, err, codes.InvalidArgument, "quantity")
		unchanged(t, before, s.get(alice))
	}
	// 60 + 41 exceeds the per-line limit of 100.
	_, err = s.cart.AddItem(alice, &cartv1.AddItemRequest{ProductId: "chef-knife", Quantity: 41})
	wantStatus(t, err, codes.InvalidArgument, "quantity")
	unchanged(t, before, s.get(alice))

	s.add(alice, "headlamp", 1)
	before = s.get(alice)
	_, err = s.cart.AddItem(alice, &cartv1.AddItemRequest{ProductId: "french-press", Quantity: 1})
	wantStatus(t, err, codes.FailedPrecondition, "different products")
	unchanged(t, before, s.get(alice))
}

func TestCatalogDown(t *testing.T) {
	s := startShop(t)
	alice := s.as("alice")
	s.add(alice, "standing-desk", 1)
	before := s.get(alice)

	s.stopCatalog()

	_, err := s.cart.AddItem(alice, &cartv1.AddItemRequest{ProductId: "desk-lamp", Quantity: 1})
	wantStatus(t, err, codes.Unavailable, "catalog unavailable")

	// Reading still works, priced from the last-known prices.
	after := s.get(alice)
	unchanged(t, before, after)
	if after.GetSubtotal().GetMinorUnits() <= 0 {
		t.Fatalf("cart not priced from the cache: %v", after)
	}
}

func TestCatalogDownWithoutCachedPrices(t *testing.T) {
	s := startShop(t)
	alice := s.as("alice")
	s.add(alice, "standing-desk", 2)
	// A second replica that never saw a price, sharing the bucket.
	replica := s.startCart()
	s.stopCatalog()

	resp, err := replica.GetCart(alice, &cartv1.GetCartRequest{})
	if err != nil {
		t.Fatalf("GetCart with the catalog down: %v", err)
	}
	c := resp.GetCart()
	if got := lines(c); len(got) != 1 || got["standing-desk"] != 2 {
		t.Fatalf("lines = %v", got)
	}
	if it := c.GetItems()[0]; it.GetUnitPrice() != nil || it.GetLineTotal() != nil || c.GetSubtotal() != nil {
		t.Fatalf("want items without prices and no subtotal, got %v", c)
	}
}

func TestUnauthenticated(t *testing.T) {
	s := startShop(t)
	_, err := s.cart.GetCart(t.Context(), &cartv1.GetCartRequest{})
	wantStatus(t, err, codes.Unauthenticated, "")
	_, err = s.cart.AddItem(t.Context(), &cartv1.AddItemRequest{ProductId: "headlamp", Quantity: 1})
	wantStatus(t, err, codes.Unauthenticated, "")

	forged := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	_, err = s.cart.GetCart(forged, &cartv1.GetCartRequest{})
	wantStatus(t, err, codes.Unauthenticated, "")
}
