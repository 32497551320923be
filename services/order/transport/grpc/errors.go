package grpctransport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/grpcserver"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// errNoReadModel is returned by read-model queries while none is wired.
var errNoReadModel = fmt.Errorf("order read model not configured: %w", app.ErrUnavailable)

// toStatus is the one place order errors become gRPC status codes. Messages of
// client errors carry only what the caller sent or owns; anything unexpected is
// logged here, once, and answered Internal without detail.
func (s *Server) toStatus(ctx context.Context, err error) error {
	var (
		unknown    *app.UnknownProductError
		transition *domain.TransitionError
	)
	switch {
	case errors.Is(err, app.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "no verified caller")
	case errors.As(err, &unknown):
		return grpcserver.FieldError(codes.InvalidArgument, fmt.Sprintf("items[%d].product_id", unknown.Index),
			fmt.Sprintf("unknown product %q", unknown.ProductID))
	case errors.Is(err, app.ErrNotFound), errors.Is(err, domain.ErrNotOwner):
		return status.Error(codes.NotFound, "order not found")
	case errors.As(err, &transition):
		return status.Errorf(codes.FailedPrecondition, "order is %s: %s is not allowed", transition.From, transition.Command)
	case errors.Is(err, domain.ErrIllegalTransition):
		return status.Error(codes.FailedPrecondition, "not allowed in the order's current state")
	case errors.Is(err, domain.ErrInvalidOrder):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, app.ErrInvalidPageToken):
		return grpcserver.FieldError(codes.InvalidArgument, "page_token", "not a page token of this listing")
	case errors.Is(err, app.ErrVersionOutOfRange):
		return status.Error(codes.OutOfRange, "the order has no such version")
	case errors.Is(err, app.ErrConcurrency):
		return status.Error(codes.Aborted, "the order changed concurrently; retry")
	case errors.Is(err, app.ErrUnavailable), errors.Is(err, eventstore.ErrUnavailable):
		// The event store counts: during a NATS failover it has no leader to answer
		// for a moment, and the caller's retry will find the new one.
		s.logger.WarnContext(ctx, "order dependency unavailable", "error", err)
		// Marked as a dependency's outage, so clients' breakers to this healthy
		// service stay closed (order reads go on while shipping is down).
		return resilience.DependencyUnavailable("", "a service the order depends on is unavailable; retry later")
	case errors.Is(err, errTooManyWatches):
		return status.Error(codes.ResourceExhausted, "too many order watches open; close one and retry")
	case errors.Is(err, errWatchExpired):
		return status.Errorf(codes.DeadlineExceeded, "watch ended after its maximum of %s; watch again", s.watchMax)
	case errors.Is(err, errWatchClosed):
		return status.Error(codes.Unavailable, "the order service is shutting down; watch again")
	default:
		return grpcserver.Unexpected(ctx, s.logger, "order", err)
	}
}
