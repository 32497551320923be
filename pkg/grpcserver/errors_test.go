package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/pkg/grpcserver"
)

func TestUnexpected(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		err    error
		code   codes.Code
		logged bool
	}{
		{fmt.Errorf("read: %w", context.Canceled), codes.Canceled, false},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), codes.DeadlineExceeded, false},
		{errors.New("disk on fire at /var/lib/x"), codes.Internal, true},
	} {
		var logs bytes.Buffer
		err := grpcserver.Unexpected(ctx, slog.New(slog.NewTextHandler(&logs, nil)), "widget", tt.err)
		st := status.Convert(err)
		if st.Code() != tt.code {
			t.Errorf("%v: code %v, want %v", tt.err, st.Code(), tt.code)
		}
		if strings.Contains(st.Message(), "disk") {
			t.Errorf("%v: message %q leaks the error", tt.err, st.Message())
		}
		if got := strings.Contains(logs.String(), "widget request failed"); got != tt.logged {
			t.Errorf("%v: logged %v, want %v: %s", tt.err, got, tt.logged, logs.String())
		}
	}
}
