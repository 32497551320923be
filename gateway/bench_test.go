package gateway_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/eventshop/eventshop/gateway"
	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/resilience"
)

// The gateway's cost is what a JSON call pays on top of the same gRPC call made
// directly: routing, token verification, rate limits, JSON transcoding, one more hop.

func BenchmarkGetProduct(b *testing.B) {
	s := startShop(b, shopOptions{without: []string{"cart", "order", "payment", "inventory", "shipping"}, tweak: unlimited})
	b.Run("gateway JSON", func(b *testing.B) {
		for b.Loop() {
			getOK(b, s.url+"/api/v1/products/espresso-machine", "")
		}
	})
	b.Run("direct gRPC", func(b *testing.B) {
		conn, err := resilience.Dial(catalogAddr(b, s))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		c := catalogv1.NewCatalogServiceClient(conn)
		for b.Loop() {
			if _, err := c.GetProduct(context.Background(), &catalogv1.GetProductRequest{Id: "espresso-machine"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGetCartAuthenticated(b *testing.B) {
	s := startShop(b, shopOptions{without: []string{"order", "payment", "inventory", "shipping"}, tweak: unlimited})
	tok := s.token("alice")
	b.Run("gateway JSON", func(b *testing.B) {
		for b.Loop() {
			getOK(b, s.url+"/api/v1/cart", tok)
		}
	})
	b.Run("direct gRPC", func(b *testing.B) {
		conn, err := resilience.Dial(s.gwUpstream(b, "cart"))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		c := cartv1.NewCartServiceClient(conn)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		for b.Loop() {
			if _, err := c.GetCart(ctx, &cartv1.GetCartRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// unlimited keeps the rate limiters in the path but out of the way.
func unlimited(c *gateway.Config) { c.IPRate, c.IPBurst, c.UserRate, c.UserBurst = 1e9, 1e9, 1e9, 1e9 }

func getOK(b *testing.B, url, token string) {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

func catalogAddr(b *testing.B, s *shop) string { return s.gwUpstream(b, "catalog") }
