package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// lostAckStore keeps every append, but reports the first one to an order stream as
// failed: the store has the order and its saga's start, the caller does not know.
type lostAckStore struct {
	eventstore.Store
	mu   sync.Mutex
	lost bool
}

func (s *lostAckStore) Append(ctx context.Context, stream string, expected eventstore.Version, evs ...eventstore.Event) (eventstore.Version, error) {
	v, err := s.Store.Append(ctx, stream, expected, evs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && !s.lost && strings.HasPrefix(stream, app.Category+"-") {
		s.lost = true
		return 0, errors.New("connection lost before the acknowledgement")
	}
	return v, err
}

type oneProductCatalog struct{}

func (oneProductCatalog) Products(_ context.Context, ids []string) (map[string]app.Product, error) {
	out := map[string]app.Product{}
	for _, id := range ids {
		out[id] = app.Product{ID: id, Name: id, Price: domain.NewMoney(1000, "USD"), WeightGrams: 100}
	}
	return out, nil
}

// PlaceOrder whose append was stored but reported failed answers an error; the
// client's retry with the same key finds the order, gets its saga going (the first
// command had never been sent) and the order completes, without waiting for a
// restart.
func TestRetriedPlaceOrderDrivesASagaWhoseStartWasLost(t *testing.T) {
	store := &lostAckStore{Store: eventstore.NewMemory()}
	env := startSagaOn(t, store, happyParticipants())
	place := app.NewPlaceOrder(env.repo, oneProductCatalog{}, app.FlatRate{Units: 500}, nil).
		WithSagaStart(app.SagaStartAppend(env.orch)).
		WithSagaResume(env.orch.ResumeSaga)
	cmd := app.PlaceOrderCommand{
		UserID: "alice", IdempotencyKey: "lost-ack-1",
		Items:        []app.Item{{ProductID: "mug", Quantity: 1}},
		Address:      domain.Address{Name: "Alice", Street: "1 Main St", City: "Springfield", PostalCode: "12345", CountryCode: "US"},
		PaymentToken: "tok_visa",
	}
	if _, err := place.Handle(t.Context(), cmd); err == nil {
		t.Fatal("the first PlaceOrder reported success on a lost acknowledgement")
	}
	if n := len(env.tr.Sent()); n != 0 {
		t.Fatalf("%d commands sent after the lost start, want none", n)
	}
	o, err := place.Handle(t.Context(), cmd)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	env.awaitState(t, o.ID(), domain.StateCompleted)
}
