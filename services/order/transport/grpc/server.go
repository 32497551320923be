// Package grpctransport serves the order service over gRPC: it takes the caller from
// the verified token, maps requests to commands and queries, and maps results and
// errors back to protobuf and status codes, the latter in one place (toStatus).
package grpctransport

import (
	"context"
	"log/slog"
	"slices"
	"time"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/services/order/app"
)

// AdminRole is the role ListSalesByProduct requires.
const AdminRole = "admin"

// ReadModel answers queries from the projected read side. It is eventually
// consistent with the event store.
type ReadModel interface {
	// GetOrder returns an order by id; an error matching app.ErrNotFound when there
	// is none.
	GetOrder(ctx context.Context, orderID string) (*orderv1.Order, error)
	// ListOrdersByUser pages through userID's orders, newest first, optionally of
	// one status (UNSPECIFIED: all). pageSize 0 means the read model's default. It
	// returns an error matching app.ErrInvalidPageToken for a token it did not issue.
	ListOrdersByUser(ctx context.Context, userID string, status orderv1.OrderStatus, pageSize int, pageToken string) (orders []*orderv1.Order, nextPageToken string, err error)
	// SalesByProduct returns units and revenue per product, best sellers first, at
	// most limit rows (0: the read model's default).
	SalesByProduct(ctx context.Context, limit int) ([]*orderv1.ProductSales, error)
}

// Server implements orderv1.OrderServiceServer. Requests arrive authenticated and
// validated by the grpcserver interceptors.
type Server struct {
	orderv1.UnimplementedOrderServiceServer

	place   app.PlaceOrder
	cancel  app.CancelOrder
	queries app.Queries
	reads   ReadModel
	logger  *slog.Logger

	// changes feeds WatchOrder; nil leaves it Unavailable.
	changes      Changes
	watchMax     time.Duration
	watchPerUser int
	watching     watchers
}

var _ orderv1.OrderServiceServer = (*Server)(nil)

// NewServer returns the gRPC server. reads may be nil while no read model is wired:
// GetOrder, ListOrders, ListSalesByProduct and WatchOrder then answer Unavailable;
// WatchOrder needs WithChanges too. A nil logger means slog.Default().
func NewServer(place app.PlaceOrder, cancel app.CancelOrder, queries app.Queries, reads ReadModel, logger *slog.Logger, opts ...Option) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{
		place: place, cancel: cancel, queries: queries, reads: reads, logger: logger,
		watchMax: DefaultWatchMaxDuration, watchPerUser: DefaultWatchesPerUser,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// caller returns the verified user; "" when the call carries no verified identity,
// which every handler reports as Unauthenticated.
func caller(ctx context.Context) string {
	c, ok := auth.ClaimsFromContext(ctx)
	if !ok {
		return ""
	}
	return c.Subject
}

// PlaceOrder places an order for the caller; prices come from the catalog only.
func (s *Server) PlaceOrder(ctx context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	items := make([]app.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = app.Item{ProductID: it.GetProductId(), Quantity: it.GetQuantity()}
	}
	o, err := s.place.Handle(ctx, app.PlaceOrderCommand{
		UserID:         caller(ctx),
		IdempotencyKey: req.GetIdempotencyKey(),
		Items:          items,
		Address:        addressFromProto(req.GetShippingAddress()),
		PaymentToken:   req.GetPaymentToken(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.PlaceOrderResponse{OrderId: o.ID(), Order: orderToProto(o)}, nil
}

// CancelOrder asks to cancel the caller's order.
func (s *Server) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	o, err := s.cancel.Handle(ctx, app.CancelOrderCommand{UserID: caller(ctx), OrderID: req.GetOrderId(), Reason: req.GetReason()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.CancelOrderResponse{Order: orderToProto(o)}, nil
}

// GetOrderHistory returns the caller's order's events from the event store.
func (s *Server) GetOrderHistory(ctx context.Context, req *orderv1.GetOrderHistoryRequest) (*orderv1.GetOrderHistoryResponse, error) {
	entries, err := s.queries.History(ctx, caller(ctx), req.GetOrderId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := make([]*orderv1.HistoryEntry, len(entries))
	for i, e := range entries {
		out[i] = &orderv1.HistoryEntry{
			Version:     e.Version,
			Type:        e.Type,
			Time:        timestamp(e.Time),
			Summary:     e.Summary,
			StatusAfter: orderv1.OrderStatus(e.StateAfter),
		}
	}
	return &orderv1.GetOrderHistoryResponse{Entries: out}, nil
}

// GetOrderAt folds the caller's order's events up to the requested version.
func (s *Server) GetOrderAt(ctx context.Context, req *orderv1.GetOrderAtRequest) (*orderv1.GetOrderAtResponse, error) {
	at, err := s.queries.At(ctx, caller(ctx), req.GetOrderId(), req.GetVersion())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	o := orderToProto(at.Order)
	o.CreateTime, o.UpdateTime = timestamp(at.Created), timestamp(at.Updated)
	return &orderv1.GetOrderAtResponse{Order: o}, nil
}

// GetOrder returns the caller's order from the read model.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	user := caller(ctx)
	if user == "" {
		return nil, s.toStatus(ctx, app.ErrUnauthenticated)
	}
	if s.reads == nil {
		return nil, s.toStatus(ctx, errNoReadModel)
	}
	o, err := s.readOwn(ctx, user, req.GetOrderId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.GetOrderResponse{Order: o}, nil
}

// ListOrders pages through the caller's orders from the read model.
func (s *Server) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	user := caller(ctx)
	if user == "" {
		return nil, s.toStatus(ctx, app.ErrUnauthenticated)
	}
	if s.reads == nil {
		return nil, s.toStatus(ctx, errNoReadModel)
	}
	orders, next, err := s.reads.ListOrdersByUser(ctx, user, req.GetStatus(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.ListOrdersResponse{Orders: orders, NextPageToken: next}, nil
}

// ListSalesByProduct reports sales per product to admins.
func (s *Server) ListSalesByProduct(ctx context.Context, req *orderv1.ListSalesByProductRequest) (*orderv1.ListSalesByProductResponse, error) {
	if err := auth.RequireRole(ctx, AdminRole); err != nil {
		return nil, err
	}
	if s.reads == nil {
		return nil, s.toStatus(ctx, errNoReadModel)
	}
	sales, err := s.reads.SalesByProduct(ctx, int(req.GetLimit()))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &orderv1.ListSalesByProductResponse{Sales: sales}, nil
}

// DefaultBestSellers is how many products ListBestSellers names when asked for no
// particular number.
const DefaultBestSellers = 8

// ListBestSellers names the products sold most, to anyone, without their figures.
// A product sold in two currencies counts where it ranks first.
func (s *Server) ListBestSellers(ctx context.Context, req *orderv1.ListBestSellersRequest) (*orderv1.ListBestSellersResponse, error) {
	if s.reads == nil {
		return nil, s.toStatus(ctx, errNoReadModel)
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = DefaultBestSellers
	}
	sales, err := s.reads.SalesByProduct(ctx, limit)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	ids := make([]string, 0, len(sales))
	for _, p := range sales {
		if !slices.Contains(ids, p.GetProductId()) {
			ids = append(ids, p.GetProductId())
		}
	}
	return &orderv1.ListBestSellersResponse{ProductIds: ids}, nil
}
