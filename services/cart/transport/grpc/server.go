// Package grpctransport serves the cart over gRPC: the user is the caller's verified
// token subject, requests map to app use cases, and errors become status codes in
// one place (toStatus).
package grpctransport

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	cartv1 "github.com/eventshop/eventshop/gen/go/eventshop/cart/v1"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/cart/app"
	"github.com/eventshop/eventshop/services/cart/domain"
)

// Server implements cartv1.CartServiceServer. It must run behind the auth
// interceptor: without verified claims every call is Unauthenticated.
type Server struct {
	cartv1.UnimplementedCartServiceServer
	carts  *app.Carts
	logger *slog.Logger
}

var _ cartv1.CartServiceServer = (*Server)(nil)

// NewServer returns a Server over carts. It panics if carts is nil.
func NewServer(carts *app.Carts, logger *slog.Logger) *Server {
	if carts == nil {
		panic("grpctransport: nil carts")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{carts: carts, logger: logger}
}

// errNoUser is returned when the call carries no verified identity.
var errNoUser = errors.New("no verified user")

func userID(ctx context.Context) (string, error) {
	c, ok := auth.ClaimsFromContext(ctx)
	if !ok || c.Subject == "" {
		return "", errNoUser
	}
	return c.Subject, nil
}

// GetCart returns the caller's cart, priced.
func (s *Server) GetCart(ctx context.Context, _ *cartv1.GetCartRequest) (*cartv1.GetCartResponse, error) {
	user, err := userID(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	pc, err := s.carts.Get(ctx, user)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &cartv1.GetCartResponse{Cart: cartToProto(pc)}, nil
}

// AddItem adds a product the catalog sells to the caller's cart.
func (s *Server) AddItem(ctx context.Context, req *cartv1.AddItemRequest) (*cartv1.AddItemResponse, error) {
	user, err := userID(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	pc, err := s.carts.AddItem(ctx, user, req.GetProductId(), req.GetQuantity())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &cartv1.AddItemResponse{Cart: cartToProto(pc)}, nil
}

// UpdateItemQuantity sets the quantity of a product in the caller's cart.
func (s *Server) UpdateItemQuantity(ctx context.Context, req *cartv1.UpdateItemQuantityRequest) (*cartv1.UpdateItemQuantityResponse, error) {
	user, err := userID(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	pc, err := s.carts.UpdateItemQuantity(ctx, user, req.GetProductId(), req.GetQuantity())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &cartv1.UpdateItemQuantityResponse{Cart: cartToProto(pc)}, nil
}

// RemoveItem removes a product from the caller's cart; absent is fine.
func (s *Server) RemoveItem(ctx context.Context, req *cartv1.RemoveItemRequest) (*cartv1.RemoveItemResponse, error) {
	user, err := userID(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	pc, err := s.carts.RemoveItem(ctx, user, req.GetProductId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &cartv1.RemoveItemResponse{Cart: cartToProto(pc)}, nil
}

// EmptyCart removes every item from the caller's cart.
func (s *Server) EmptyCart(ctx context.Context, _ *cartv1.EmptyCartRequest) (*cartv1.EmptyCartResponse, error) {
	user, err := userID(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if err := s.carts.Empty(ctx, user); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &cartv1.EmptyCartResponse{}, nil
}

// toStatus is the one place cart errors become gRPC codes. Domain and app messages
// name only what the caller sent, so they are returned; anything else is logged and
// hidden behind Internal.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, errNoUser):
		return status.Error(codes.Unauthenticated, "missing verified user")
	case errors.Is(err, domain.ErrInvalidQuantity):
		return grpcserver.FieldError(codes.InvalidArgument, "quantity", err.Error())
	case errors.Is(err, domain.ErrTooManyLines):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, domain.ErrItemNotFound), errors.Is(err, app.ErrUnknownProduct):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, app.ErrCatalogUnavailable):
		return resilience.DependencyUnavailable("catalog", "catalog unavailable")
	case errors.Is(err, app.ErrConflict):
		return status.Error(codes.Aborted, "cart changed concurrently, retry")
	default:
		return grpcserver.Unexpected(ctx, s.logger, "cart", err)
	}
}

func cartToProto(pc domain.PricedCart) *cartv1.Cart {
	out := &cartv1.Cart{UserId: pc.Cart.UserID(), Items: make([]*cartv1.CartItem, len(pc.Items))}
	for i, it := range pc.Items {
		item := &cartv1.CartItem{ProductId: it.ProductID, Quantity: it.Quantity}
		if it.Priced {
			item.Name = it.Name
			item.ImageUrl = it.ImageURL
			item.UnitPrice = moneyToProto(it.UnitPrice)
			item.LineTotal = moneyToProto(it.LineTotal)
		}
		out.Items[i] = item
	}
	if pc.HasSubtotal {
		out.Subtotal = moneyToProto(pc.Subtotal)
	}
	if t := pc.Cart.UpdateTime(); !t.IsZero() {
		out.UpdateTime = timestamppb.New(t)
	}
	return out
}

func moneyToProto(m domain.Money) *commonv1.Money {
	return m.Proto()
}
