package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

func TestToStatus(t *testing.T) {
	s := &Server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	secret := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	tests := []struct {
		err      error
		want     codes.Code
		contains string
	}{
		{fmt.Errorf("cancel: %w", &domain.TransitionError{From: domain.StateShipmentCreated, Command: domain.CmdCancelByUser}), codes.FailedPrecondition, "SHIPMENT_CREATED"},
		{fmt.Errorf("place: %w", domain.ErrInvalidOrder), codes.InvalidArgument, "invalid order"},
		{fmt.Errorf("x: %w", domain.ErrCurrencyMismatch), codes.Internal, "internal error"},
		{fmt.Errorf("cancel: %w", domain.ErrNotOwner), codes.NotFound, "order not found"},
		{fmt.Errorf("load: %w", app.ErrNotFound), codes.NotFound, "order not found"},
		{fmt.Errorf("place: %w", &app.UnknownProductError{Index: 3, ProductID: "nope"}), codes.InvalidArgument, "items[3].product_id"},
		{fmt.Errorf("price: %w: %w", app.ErrUnavailable, secret), codes.Unavailable, "unavailable"},
		{fmt.Errorf("place order: saga: start: %w: nats: no response from stream", eventstore.ErrUnavailable), codes.Unavailable, "unavailable"},
		{fmt.Errorf("update: %w", app.ErrConcurrency), codes.Aborted, "concurrently"},
		{app.ErrUnauthenticated, codes.Unauthenticated, ""},
		{app.ErrVersionOutOfRange, codes.OutOfRange, ""},
		{fmt.Errorf("list: %w", app.ErrInvalidPageToken), codes.InvalidArgument, "page_token"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{fmt.Errorf("watch: %w", errTooManyWatches), codes.ResourceExhausted, "too many"},
		{errWatchExpired, codes.DeadlineExceeded, "watch again"},
		{errWatchClosed, codes.Unavailable, "watch again"},
		{secret, codes.Internal, "internal error"},
	}
	for _, tc := range tests {
		st := status.Convert(s.toStatus(t.Context(), tc.err))
		if st.Code() != tc.want {
			t.Errorf("%v -> %s, want %s", tc.err, st.Code(), tc.want)
		}
		if tc.contains != "" && !strings.Contains(st.Message(), tc.contains) {
			t.Errorf("%v -> message %q, want it to contain %q", tc.err, st.Message(), tc.contains)
		}
		if strings.Contains(st.Message(), "10.0.0.7") {
			t.Errorf("%v -> message %q leaks the cause", tc.err, st.Message())
		}
	}
}
