package order

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventshop/eventshop/services/order/app"
)

// A read model whose database is restarting is a dependency's outage (app.ErrUnavailable,
// which the transport answers as resilience.DependencyUnavailable, which callers'
// breakers do not count against the order service, so placing orders, which never
// reads the read model, goes on); any other database error stays internal.
func TestReadModelOutageIsADependencyOutage(t *testing.T) {
	restart := fmt.Errorf("projection: get order: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"})
	if err := readErr(restart); !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("readErr(restart) = %v, want app.ErrUnavailable", err)
	}
	broken := fmt.Errorf("projection: get order: %w", &pgconn.PgError{Code: "42P01", Message: "relation does not exist"})
	if err := readErr(broken); errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("readErr(missing table) = %v, want it left internal", err)
	}
}
