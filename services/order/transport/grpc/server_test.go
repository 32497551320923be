package grpctransport_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
	grpctransport "github.com/eventshop/eventshop/services/order/transport/grpc"
)

// readModel serves fixed orders, the way the projection would once it caught up.
type readModel map[string]*orderv1.Order

func (r readModel) GetOrder(_ context.Context, id string) (*orderv1.Order, error) {
	if o, ok := r[id]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("read model: %w", app.ErrNotFound)
}

func (r readModel) ListOrdersByUser(_ context.Context, user string, _ orderv1.OrderStatus, _ int, token string) ([]*orderv1.Order, string, error) {
	if token != "" {
		return nil, "", app.ErrInvalidPageToken
	}
	var out []*orderv1.Order
	for _, o := range r {
		if o.GetUserId() == user {
			out = append(out, o)
		}
	}
	return out, "", nil
}

func (r readModel) SalesByProduct(context.Context, int) ([]*orderv1.ProductSales, error) {
	return []*orderv1.ProductSales{{ProductId: "french-press", Units: 3}}, nil
}

// noCatalog fails every lookup; these tests never place orders.
type noCatalog struct{}

func (noCatalog) Products(context.Context, []string) (map[string]app.Product, error) {
	return nil, app.ErrUnavailable
}

func newServer(reads grpctransport.ReadModel) *grpctransport.Server {
	repo := app.NewRepository(eventstore.NewMemory())
	return grpctransport.NewServer(app.NewPlaceOrder(repo, noCatalog{}, app.FlatRate{}, nil), app.NewCancelOrder(repo), app.NewQueries(repo), reads, nil)
}

func as(user string, roles ...string) context.Context {
	return auth.ContextWithClaims(context.Background(), &auth.Claims{Subject: user, Roles: roles})
}

const aliceOrder = "0195f3a0-0000-7000-8000-000000000001"

func TestReadModelQueriesSeeOnlyTheCallersOrders(t *testing.T) {
	s := newServer(readModel{aliceOrder: {Id: aliceOrder, UserId: "alice"}})

	resp, err := s.GetOrder(as("alice"), &orderv1.GetOrderRequest{OrderId: aliceOrder})
	if err != nil || resp.GetOrder().GetId() != aliceOrder {
		t.Fatalf("alice: %v, %v", resp, err)
	}
	_, err = s.GetOrder(as("bob"), &orderv1.GetOrderRequest{OrderId: aliceOrder})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("bob reading alice's order: %v, want NotFound", err)
	}
	_, err = s.GetOrder(as("alice"), &orderv1.GetOrderRequest{OrderId: "0195f3a0-0000-7000-8000-000000000002"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown order: %v, want NotFound", err)
	}
	_, err = s.GetOrder(context.Background(), &orderv1.GetOrderRequest{OrderId: aliceOrder})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no caller: %v, want Unauthenticated", err)
	}

	list, err := s.ListOrders(as("bob"), &orderv1.ListOrdersRequest{})
	if err != nil || len(list.GetOrders()) != 0 {
		t.Fatalf("bob's list: %v, %v", list, err)
	}
	_, err = s.ListOrders(as("alice"), &orderv1.ListOrdersRequest{PageToken: "forged"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("forged token: %v, want InvalidArgument", err)
	}

	_, err = s.ListSalesByProduct(as("alice"), &orderv1.ListSalesByProductRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("alice's sales report: %v, want PermissionDenied", err)
	}
	sales, err := s.ListSalesByProduct(as("admin", "admin"), &orderv1.ListSalesByProductRequest{})
	if err != nil || len(sales.GetSales()) != 1 {
		t.Fatalf("admin's sales report: %v, %v", sales, err)
	}
}

func TestReadModelQueriesWithoutReadModelAreUnavailable(t *testing.T) {
	s := newServer(nil)
	_, err := s.GetOrder(as("alice"), &orderv1.GetOrderRequest{OrderId: aliceOrder})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("GetOrder: %v, want Unavailable", err)
	}
}

// salesModel is a read model whose sales are given, recording the limit asked for.
type salesModel struct {
	readModel
	sales []*orderv1.ProductSales
	limit *int
}

func (m salesModel) SalesByProduct(_ context.Context, limit int) ([]*orderv1.ProductSales, error) {
	*m.limit = limit
	return m.sales, nil
}

// Anyone may learn which products sell best, in order and each once, but not the
// figures; a request without a limit gets DefaultBestSellers.
func TestBestSellersNameProductsOnly(t *testing.T) {
	var limit int
	usd := func(u int64) *commonv1.Money { return &commonv1.Money{MinorUnits: u, CurrencyCode: "USD"} }
	s := newServer(salesModel{limit: &limit, sales: []*orderv1.ProductSales{
		{ProductId: "grinder", Units: 9, Revenue: usd(80_550)},
		{ProductId: "tamper", Units: 4, Revenue: usd(9_800)},
		{ProductId: "grinder", Units: 2, Revenue: &commonv1.Money{MinorUnits: 17_000, CurrencyCode: "EUR"}},
		{ProductId: "milk-jug", Units: 1, Revenue: usd(1_299)},
	}})
	resp, err := s.ListBestSellers(context.Background(), &orderv1.ListBestSellersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetProductIds(), []string{"grinder", "tamper", "milk-jug"}; !slices.Equal(got, want) {
		t.Fatalf("best sellers %v, want %v", got, want)
	}
	if limit != grpctransport.DefaultBestSellers {
		t.Fatalf("asked the read model for %d, want %d", limit, grpctransport.DefaultBestSellers)
	}
	if _, err := s.ListBestSellers(context.Background(), &orderv1.ListBestSellersRequest{Limit: 3}); err != nil || limit != 3 {
		t.Fatalf("limit 3: %v, asked for %d", err, limit)
	}
	if _, err := newServer(nil).ListBestSellers(context.Background(), &orderv1.ListBestSellersRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("without a read model: %v, want Unavailable", err)
	}
}
