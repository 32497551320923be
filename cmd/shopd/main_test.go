package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// startShop runs the real shopd program on random loopback ports.
func startShop(t *testing.T) *Main {
	t.Helper()
	m := NewMain()
	var stdout, stderr bytes.Buffer
	m.Stdout, m.Stderr = &stdout, &stderr
	args := []string{"-data-dir", t.TempDir(), "-nats-port", "0", "-issuer-addr", "127.0.0.1:0", "-log-level", "warn"}
	for _, svc := range []string{"catalog", "cart", "order", "payment", "inventory", "shipping"} {
		args = append(args, "-"+svc+"-grpc-addr", "127.0.0.1:0")
	}
	args = append(args, "-gateway-http-addr", "127.0.0.1:0")
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := resilience.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestShopdServesEveryService(t *testing.T) {
	m := startShop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, svc := range []string{"catalog", "cart", "order", "payment", "inventory", "shipping"} {
		addr := m.Addr(svc)
		if addr == "" {
			t.Fatalf("%s not started", svc)
		}
		if !strings.Contains(m.Summary(), svc+"="+addr) {
			t.Errorf("summary %q lacks %s", m.Summary(), svc)
		}
		resp, err := healthpb.NewHealthClient(dial(t, addr)).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%s health: %v %v", svc, resp, err)
		}
	}

	resp, err := http.Get(m.StorefrontURL() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway /healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	cat := catalogv1.NewCatalogServiceClient(dial(t, m.Addr("catalog")))
	list, err := cat.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetProducts()) != 5 || list.GetNextPageToken() == "" {
		t.Fatalf("ListProducts: %d products, next %q", len(list.GetProducts()), list.GetNextPageToken())
	}
	product := list.GetProducts()[0]

	token, err := m.Issuer().Login(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)

	cart := cartv1.NewCartServiceClient(dial(t, m.Addr("cart")))
	if _, err := cart.GetCart(ctx, &cartv1.GetCartRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("GetCart without a token: %v, want Unauthenticated", err)
	}
	if _, err := cart.AddItem(authed, &cartv1.AddItemRequest{ProductId: product.GetId(), Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	got, err := cart.GetCart(authed, &cartv1.GetCartRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * product.GetPrice().GetMinorUnits()
	if got.GetCart().GetSubtotal().GetMinorUnits() != want {
		t.Fatalf("cart subtotal %v, want %d", got.GetCart().GetSubtotal(), want)
	}

	orders := orderv1.NewOrderServiceClient(dial(t, m.Addr("order")))
	placed, err := orders.PlaceOrder(authed, &orderv1.PlaceOrderRequest{
		IdempotencyKey: "shopd-test-1",
		Items:          []*commonv1.LineItem{{ProductId: product.GetId(), Quantity: 1}},
		ShippingAddress: &commonv1.Address{
			Name: "Alice", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US",
		},
		PaymentToken: "tok_visa",
	})
	if err != nil {
		t.Fatal(err)
	}
	o := placed.GetOrder()
	if o.GetSubtotal().GetMinorUnits() != product.GetPrice().GetMinorUnits() || o.GetShippingCost().GetMinorUnits() <= 0 {
		t.Fatalf("order priced %v + %v, want the catalog price plus a shipping quote", o.GetSubtotal(), o.GetShippingCost())
	}
}

func TestShopdRejectsBadFlags(t *testing.T) {
	m := NewMain()
	var stderr bytes.Buffer
	m.Stderr = &stderr
	if err := m.ParseFlags([]string{"-no-such-flag"}); err == nil {
		t.Fatal("want an error for an unknown flag")
	}
	t.Setenv("SHOP_NATS_PORT", "not-a-number")
	if err := NewMain().ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "SHOP_NATS_PORT") {
		t.Fatalf("bad env value: %v, want an error naming SHOP_NATS_PORT", err)
	}
}

func TestTokenSubcommand(t *testing.T) {
	m := startShop(t)
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := runToken(ctx, []string{"-issuer", m.IssuerURL(), "bob"}, &out, &errOut); err != nil {
		t.Fatalf("token: %v\n%s", err, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	cart := cartv1.NewCartServiceClient(dial(t, m.Addr("cart")))
	got, err := cart.GetCart(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), &cartv1.GetCartRequest{})
	if err != nil {
		t.Fatalf("the printed token was not accepted: %v", err)
	}
	if got.GetCart().GetUserId() != "bob" {
		t.Fatalf("cart of %q, want bob", got.GetCart().GetUserId())
	}
	if err := runToken(ctx, []string{"-issuer", m.IssuerURL(), "bob", "wrong"}, &out, &errOut); err == nil {
		t.Fatal("want an error for a wrong password")
	}
}
