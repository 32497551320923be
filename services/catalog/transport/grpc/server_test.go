package grpctransport_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/catalog/productfile"
	grpctransport "github.com/eventshop/eventshop/services/catalog/transport/grpc"
)

// client serves the embedded catalog on a loopback port and returns a client to it.
func client(t *testing.T) catalogv1.CatalogServiceClient {
	t.Helper()
	cat, err := productfile.EmbeddedCatalog()
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New()
	catalogv1.RegisterCatalogServiceServer(srv.GRPC(), grpctransport.NewServer(cat))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, lis); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, err := resilience.Dial(lis.Addr().String(), resilience.WithName("catalog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return catalogv1.NewCatalogServiceClient(conn)
}

func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("code = %v (%v), want %v", st.Code(), err, code)
	}
	if !strings.Contains(st.Message(), field) {
		t.Fatalf("message %q does not name %q", st.Message(), field)
	}
}

func TestGetProduct(t *testing.T) {
	c := client(t)
	resp, err := c.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "espresso-machine"})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.GetProduct()
	if p.GetName() == "" || p.GetPrice().GetCurrencyCode() != "USD" || p.GetPrice().GetMinorUnits() <= 0 ||
		p.GetImageUrl() != "/static/products/espresso-machine.svg" || p.GetWeightGrams() <= 0 || len(p.GetCategories()) == 0 {
		t.Errorf("incomplete product: %v", p)
	}

	_, err = c.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "no-such-thing"})
	wantCode(t, err, codes.NotFound, "no-such-thing")
	_, err = c.GetProduct(t.Context(), &catalogv1.GetProductRequest{Id: "../etc/passwd"})
	wantCode(t, err, codes.InvalidArgument, "id")
}

func TestGetProducts(t *testing.T) {
	c := client(t)
	resp, err := c.GetProducts(t.Context(), &catalogv1.GetProductsRequest{Ids: []string{"french-press", "headlamp", "french-press"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range resp.GetProducts() {
		got = append(got, p.GetId())
	}
	if !slices.Equal(got, []string{"french-press", "headlamp"}) {
		t.Fatalf("ids = %v", got)
	}
	_, err = c.GetProducts(t.Context(), &catalogv1.GetProductsRequest{Ids: []string{"headlamp", "ghost-1", "ghost-2"}})
	wantCode(t, err, codes.NotFound, `"ghost-1"`)
	_, err = c.GetProducts(t.Context(), &catalogv1.GetProductsRequest{})
	wantCode(t, err, codes.InvalidArgument, "ids")
}

func TestListProductsPagesAndFilters(t *testing.T) {
	c := client(t)
	var all []string
	token, total := "", 0
	for {
		resp, err := c.ListProducts(t.Context(), &catalogv1.ListProductsRequest{PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		total = int(resp.GetTotalSize())
		for _, p := range resp.GetProducts() {
			all = append(all, p.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) != total || total < 30 {
		t.Fatalf("walked %d products, total %d", len(all), total)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(all)))) != total {
		t.Fatal("a product appeared twice")
	}

	resp, err := c.ListProducts(t.Context(), &catalogv1.ListProductsRequest{Category: "COFFEE", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.GetProducts() {
		if !slices.Contains(p.GetCategories(), "coffee") {
			t.Errorf("%s is not in coffee", p.GetId())
		}
	}
	// A token from the coffee listing is refused for the unfiltered listing.
	_, err = c.ListProducts(t.Context(), &catalogv1.ListProductsRequest{PageToken: resp.GetNextPageToken()})
	wantCode(t, err, codes.InvalidArgument, "page_token")
	_, err = c.ListProducts(t.Context(), &catalogv1.ListProductsRequest{PageSize: 101})
	wantCode(t, err, codes.InvalidArgument, "page_size")
}

func TestSearchProducts(t *testing.T) {
	c := client(t)
	resp, err := c.SearchProducts(t.Context(), &catalogv1.SearchProductsRequest{Query: "Kettle"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range resp.GetProducts() {
		got = append(got, p.GetId())
	}
	// Name matches first (by name), then description matches.
	if len(got) < 3 || got[0] != "pour-over-kettle" || got[1] != "tea-kettle" {
		t.Fatalf("search kettle = %v", got)
	}
	_, err = c.SearchProducts(t.Context(), &catalogv1.SearchProductsRequest{Query: ""})
	wantCode(t, err, codes.InvalidArgument, "query")

	// A category's name finds the whole category, after the products that have the
	// word in their name.
	coffee, err := c.ListProducts(t.Context(), &catalogv1.ListProductsRequest{Category: "coffee", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.SearchProducts(t.Context(), &catalogv1.SearchProductsRequest{Query: "coffee", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	hits := map[string]bool{}
	for _, p := range found.GetProducts() {
		hits[p.GetId()] = true
	}
	for _, p := range coffee.GetProducts() {
		if !hits[p.GetId()] {
			t.Errorf("search coffee misses %s of the coffee category", p.GetId())
		}
	}
	if len(coffee.GetProducts()) < 5 {
		t.Fatalf("coffee category has %d products: the test shows too little", len(coffee.GetProducts()))
	}
}

func TestListCategories(t *testing.T) {
	c := client(t)
	resp, err := c.ListCategories(t.Context(), &catalogv1.ListCategoriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetCategories()) < 5 {
		t.Fatalf("categories = %v", resp.GetCategories())
	}
	for _, cat := range resp.GetCategories() {
		if cat.GetProductCount() <= 0 {
			t.Errorf("category %s has count %d", cat.GetName(), cat.GetProductCount())
		}
	}
}
