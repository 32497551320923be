package gateway_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/eventshop/eventshop/gateway"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
)

// quoteRecorder stands in for the shipping service and records the x-canary
// metadata each quote request arrived with.
type quoteRecorder struct {
	shippingv1.UnimplementedShippingServiceServer
	canary chan []string
}

func (q *quoteRecorder) GetQuote(ctx context.Context, _ *shippingv1.GetQuoteRequest) (*shippingv1.GetQuoteResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	q.canary <- md.Get("x-canary")
	return &shippingv1.GetQuoteResponse{Cost: &commonv1.Money{CurrencyCode: "USD", MinorUnits: 100}, EstimatedDays: 2}, nil
}

// TestCanaryHeaderReachesServices checks the gateway hands a tester's x-canary header
// to the service it calls, so the mesh can route that hop (and the next) to v2.
func TestCanaryHeaderReachesServices(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &quoteRecorder{canary: make(chan []string, 2)}
	srv := grpc.NewServer()
	shippingv1.RegisterShippingServiceServer(srv, rec)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	s := startShop(t, shopOptions{
		without: []string{"shipping"},
		tweak:   func(c *gateway.Config) { c.ShippingAddr = lis.Addr().String() },
	})
	body := `{"items":[{"productId":"french-press","quantity":1}],"address":{"name":"A","street":"S 1","city":"C","postalCode":"1","countryCode":"US"}}`
	for _, tc := range []struct{ header, want string }{{"always", "always"}, {"", ""}} {
		req, err := http.NewRequest("POST", s.url+"/api/v1/shipping/quote", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tc.header != "" {
			req.Header.Set("X-Canary", tc.header)
		}
		if r := s.do(http.DefaultClient, req); r.code != http.StatusOK {
			t.Fatalf("quote: %d %s", r.code, r.body)
		}
		got := <-rec.canary
		if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
			t.Errorf("X-Canary %q reached the service as %q", tc.header, got)
		}
	}
}
