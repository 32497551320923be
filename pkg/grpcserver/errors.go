package grpcserver

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Unexpected is the common tail of every service's error table (its toStatus):
// the errors no service names itself. A request cancelled or out of time keeps
// that code; anything else is logged once, as "<service> request failed", and
// answered Internal without detail, so nothing internal reaches the caller.
func Unexpected(ctx context.Context, logger *slog.Logger, service string, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	logger.ErrorContext(ctx, service+" request failed", "error", err)
	return status.Error(codes.Internal, "internal error")
}
