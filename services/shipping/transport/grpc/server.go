// Package grpctransport serves the shipping queries over gRPC: proto <-> domain mapping and the
// one table that turns domain errors into status codes.
package grpctransport

import (
	"context"
	"errors"
	"fmt"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/money"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/shipping/app"
	"github.com/eventshop/eventshop/services/shipping/domain"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"log/slog"
)

// Server implements shippingv1.ShippingServiceServer. Requests are validated by the
// grpcserver interceptor before they arrive here.
type Server struct {
	shippingv1.UnimplementedShippingServiceServer
	app    *app.Handlers
	logger *slog.Logger
}

var _ shippingv1.ShippingServiceServer = (*Server)(nil)

// NewServer returns a server over h. It panics on a nil h.
func NewServer(h *app.Handlers, logger *slog.Logger) *Server {
	if h == nil {
		panic("shipping grpc: nil handlers")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{app: h, logger: logger}
}

// GetQuote prices a delivery: InvalidArgument naming address.country_code for an
// unsupported destination, InvalidArgument naming items for an unknown product,
// Unavailable when the catalog cannot be asked for weights.
func (s *Server) GetQuote(ctx context.Context, req *shippingv1.GetQuoteRequest) (*shippingv1.GetQuoteResponse, error) {
	q, err := s.app.Quote(ctx, req.GetAddress(), req.GetItems())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &shippingv1.GetQuoteResponse{
		Cost:          money.New(q.Cost, domain.Currency).Proto(),
		EstimatedDays: q.Days,
	}, nil
}

// GetShipment returns an order's shipment to the order's owner or an admin; NotFound
// when it has none, and for anyone else's order.
func (s *Server) GetShipment(ctx context.Context, req *shippingv1.GetShipmentRequest) (*shippingv1.GetShipmentResponse, error) {
	sh, err := s.app.Shipment(ctx, req.GetOrderId())
	if err == nil && !auth.MayRead(ctx, sh.UserID) {
		err = fmt.Errorf("order %s: %w", req.GetOrderId(), domain.ErrNotFound)
	}
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &shippingv1.GetShipmentResponse{Shipment: toProto(sh)}, nil
}

func toProto(s domain.Shipment) *shippingv1.Shipment {
	st := shippingv1.ShipmentStatus_SHIPMENT_STATUS_CREATED
	if s.Status == domain.StatusCancelled {
		st = shippingv1.ShipmentStatus_SHIPMENT_STATUS_CANCELLED
	}
	return &shippingv1.Shipment{
		Id: s.ID, OrderId: s.OrderID, TrackingId: s.TrackingID, Status: st,
		Address: &commonv1.Address{
			Name: s.Address.Name, Street: s.Address.Street, City: s.Address.City,
			PostalCode: s.Address.PostalCode, CountryCode: s.Address.CountryCode,
		},
		Cost:       money.New(s.Cost, domain.Currency).Proto(),
		CreateTime: timestamppb.New(s.CreateTime),
	}
}

// toStatus is the one place domain and app errors become gRPC codes. Anything not
// listed is an internal error: logged here, never shown to the caller.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, domain.ErrUnsupportedDestination):
		return invalid(err.Error(), "address.country_code", "no shipping zone serves this country")
	case errors.Is(err, app.ErrUnknownProduct), errors.Is(err, domain.ErrBadItem), errors.Is(err, domain.ErrEmptyParcel):
		return invalid(err.Error(), "items", err.Error())
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "shipment not found")
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		// A dependency's status (the catalog down is Unavailable): pass the code on,
		// not its details.
		switch st.Code() {
		case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
			return resilience.DependencyUnavailable("catalog", "catalog unavailable")
		}
	}
	return grpcserver.Unexpected(ctx, s.logger, "shipping", err)
}

func invalid(msg, field, desc string) error {
	st := status.New(codes.InvalidArgument, msg)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}}); err == nil {
		return d.Err()
	}
	return st.Err()
}
