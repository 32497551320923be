package resilience_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/pkg/resilience"
)

func TestDependencyUnavailableIsRetriedButDoesNotOpenTheBreaker(t *testing.T) {
	hs, addr := startHealth(t)
	hs.otherwise(func(context.Context) error {
		return resilience.DependencyUnavailable("shipping", "shipping is down")
	})
	c := dial(t, addr, resilience.WithBreaker(2, time.Hour), fastRetry, resilience.WithIdempotentMethods("/grpc.health.v1.Health/Check"))

	for i := range 3 {
		err := check(context.Background(), c)
		if status.Code(err) != codes.Unavailable || !resilience.IsDependencyUnavailable(err) {
			t.Fatalf("call %d: %v, want the server's dependency-unavailable answer", i, err)
		}
		if errors.Is(err, resilience.ErrCircuitOpen) {
			t.Fatalf("call %d: breaker opened on a dependency's outage", i)
		}
	}
	if got := hs.calls.Load(); got != 9 {
		t.Fatalf("server saw %d calls, want 9 (3 calls, each retried twice)", got)
	}

	// The same code without the marker is the target's own outage.
	hs.otherwise(fail(codes.Unavailable))
	for range 2 {
		_ = check(context.Background(), c)
	}
	assertCircuitOpen(t, check(context.Background(), c))
}

func TestIsDependencyUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"marked", resilience.DependencyUnavailable("catalog", "catalog unavailable"), true},
		{"plain unavailable", status.Error(codes.Unavailable, "down"), false},
		{"other code", status.Error(codes.Internal, "x"), false},
		{"not a status", errors.New("x"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := resilience.IsDependencyUnavailable(tt.err); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
