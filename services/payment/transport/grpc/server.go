// Package grpctransport serves the payment queries over gRPC: proto <-> domain mapping and the
// one table that turns domain errors into status codes.
package grpctransport

import (
	"context"
	"errors"
	"fmt"
	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/money"
	"github.com/eventshop/eventshop/services/payment/app"
	"github.com/eventshop/eventshop/services/payment/domain"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"log/slog"
)

// Server implements paymentv1.PaymentServiceServer. Requests are validated by the
// grpcserver interceptor before they arrive here.
type Server struct {
	paymentv1.UnimplementedPaymentServiceServer
	app    *app.Handlers
	logger *slog.Logger
}

var _ paymentv1.PaymentServiceServer = (*Server)(nil)

// NewServer returns a server over h. It panics on a nil h.
func NewServer(h *app.Handlers, logger *slog.Logger) *Server {
	if h == nil {
		panic("payment grpc: nil handlers")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{app: h, logger: logger}
}

// GetPayment returns one payment to its order's owner or an admin; NotFound for an
// unknown id and for anyone else's payment.
func (s *Server) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.GetPaymentResponse, error) {
	p, err := s.app.Payment(ctx, req.GetPaymentId())
	if err == nil && !auth.MayRead(ctx, p.UserID) {
		err = fmt.Errorf("payment %s: %w", req.GetPaymentId(), domain.ErrNotFound)
	}
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &paymentv1.GetPaymentResponse{Payment: toProto(p)}, nil
}

// GetPaymentByOrder returns an order's payment to the order's owner or an admin;
// NotFound when it has none, and for anyone else's order.
func (s *Server) GetPaymentByOrder(ctx context.Context, req *paymentv1.GetPaymentByOrderRequest) (*paymentv1.GetPaymentByOrderResponse, error) {
	p, err := s.app.PaymentByOrder(ctx, req.GetOrderId())
	if err == nil && !auth.MayRead(ctx, p.UserID) {
		err = fmt.Errorf("order %s: %w", req.GetOrderId(), domain.ErrNotFound)
	}
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &paymentv1.GetPaymentByOrderResponse{Payment: toProto(p)}, nil
}

var statuses = map[domain.Status]paymentv1.PaymentStatus{
	domain.StatusAuthorized: paymentv1.PaymentStatus_PAYMENT_STATUS_AUTHORIZED,
	domain.StatusDeclined:   paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED,
	domain.StatusCaptured:   paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED,
	domain.StatusVoided:     paymentv1.PaymentStatus_PAYMENT_STATUS_VOIDED,
	domain.StatusRefunded:   paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED,
}

func toProto(p domain.Payment) *paymentv1.Payment {
	m := func(u int64) *commonv1.Money { return money.New(u, p.Currency).Proto() }
	return &paymentv1.Payment{
		Id: p.ID, OrderId: p.OrderID, Status: statuses[p.Status],
		Authorized: m(p.Authorized), Captured: m(p.Captured), Refunded: m(p.Refunded),
		CardBrand: p.CardBrand, DeclineReason: p.DeclineReason,
		CreateTime: timestamppb.New(p.CreateTime), UpdateTime: timestamppb.New(p.UpdateTime),
	}
}

// toStatus is the one place domain errors become gRPC codes. Anything not listed is
// an internal error: logged here, never shown to the caller.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "payment not found")
	}
	return grpcserver.Unexpected(ctx, s.logger, "payment", err)
}
