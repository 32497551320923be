// Package grpctransport serves the stock queries and the admin's stock changes over gRPC:
// proto <-> domain mapping, the admin check, and the one table that turns domain
// errors into status codes.
package grpctransport

import (
	"context"
	"encoding/base64"
	"errors"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/services/inventory/app"
	"github.com/eventshop/eventshop/services/inventory/domain"
)

// AdminRole is the role SetStock and ListStock require.
const AdminRole = "admin"

// Page sizes of ListStock.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Server implements inventoryv1.InventoryServiceServer. Requests are validated by the
// grpcserver interceptor before they arrive here.
type Server struct {
	inventoryv1.UnimplementedInventoryServiceServer
	app    *app.Handlers
	logger *slog.Logger
}

var _ inventoryv1.InventoryServiceServer = (*Server)(nil)

// NewServer returns a server over h. It panics on a nil h.
func NewServer(h *app.Handlers, logger *slog.Logger) *Server {
	if h == nil {
		panic("inventory grpc: nil handlers")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{app: h, logger: logger}
}

// GetStock returns one product's stock; NotFound for an unknown product.
func (s *Server) GetStock(ctx context.Context, req *inventoryv1.GetStockRequest) (*inventoryv1.GetStockResponse, error) {
	st, err := s.app.Stock(ctx, req.GetProductId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &inventoryv1.GetStockResponse{Stock: toProto(st)}, nil
}

// SetStock sets a product's available units. It returns Unauthenticated without a
// token and PermissionDenied without the admin role.
func (s *Server) SetStock(ctx context.Context, req *inventoryv1.SetStockRequest) (*inventoryv1.SetStockResponse, error) {
	if err := auth.RequireRole(ctx, AdminRole); err != nil {
		return nil, err
	}
	st, err := s.app.SetStock(ctx, req.GetProductId(), req.GetAvailable())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &inventoryv1.SetStockResponse{Stock: toProto(st)}, nil
}

// ListStock pages through every product's stock, in product id order. It returns
// Unauthenticated without a token, PermissionDenied without the admin role and
// InvalidArgument for a malformed page token.
func (s *Server) ListStock(ctx context.Context, req *inventoryv1.ListStockRequest) (*inventoryv1.ListStockResponse, error) {
	if err := auth.RequireRole(ctx, AdminRole); err != nil {
		return nil, err
	}
	after, err := base64.RawURLEncoding.DecodeString(req.GetPageToken())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "malformed page_token")
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	// One more than the page tells whether there is a next one.
	list, err := s.app.ListStock(ctx, string(after), size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &inventoryv1.ListStockResponse{}
	if len(list) > size {
		list = list[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(list[size-1].ProductID))
	}
	for _, st := range list {
		resp.Stock = append(resp.Stock, toProto(st))
	}
	return resp, nil
}

func toProto(s domain.Stock) *inventoryv1.Stock {
	return &inventoryv1.Stock{ProductId: s.ProductID, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold, TotalStocked: s.TotalStocked}
}

// toStatus is the one place domain errors become gRPC codes. Anything not listed is
// an internal error: logged here, never shown to the caller.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "no stock for this product")
	case errors.Is(err, domain.ErrInvalidQuantity):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return grpcserver.Unexpected(ctx, s.logger, "inventory", err)
}
