package order_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/domain"
)

// watchWait bounds every watch of these tests; generous because test binaries share
// two cores.
const watchWait = 2 * time.Minute

// watch opens a watch of id as user, bounded by watchWait.
func (e *env) watch(t *testing.T, user, id string) orderv1.OrderService_WatchOrderClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.as(t, user), watchWait)
	t.Cleanup(cancel)
	w, err := e.orders.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
	if err != nil {
		t.Fatalf("WatchOrder: %v", err)
	}
	return w
}

// recv returns the next order of w, failing the test on an error.
func recv(t *testing.T, w orderv1.OrderService_WatchOrderClient) *orderv1.Order {
	t.Helper()
	resp, err := w.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return resp.GetOrder()
}

// fulfil moves order id through every saga step to COMPLETED, one update per call of
// next; without the saga running, the test plays its part.
var fulfil = []func(o *domain.Order) ([]domain.Event, error){
	func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized("pay-1", o.Total()) },
	func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved("res-1") },
	func(o *domain.Order) ([]domain.Event, error) { return o.RecordShipmentCreated("ship-1", "TRACK-1") },
	func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentCaptured("pay-1", o.Total()) },
	func(o *domain.Order) ([]domain.Event, error) { return o.Complete() },
}

func TestWatchOrderStreamsEachChangeUntilFinal(t *testing.T) {
	e := start(t)
	placed, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("watch-key-1", item("french-press", 1)))
	if err != nil {
		t.Fatal(err)
	}
	id := placed.GetOrderId()

	// Watched at once: the projection may not have the order yet, and the watch
	// waits for it rather than answering NotFound.
	w := e.watch(t, "alice", id)
	if o := recv(t, w); o.GetId() != id || o.GetVersion() != 1 || o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PENDING {
		t.Fatalf("first state = %v, want the placed order at version 1", o)
	}
	want := []orderv1.OrderStatus{
		orderv1.OrderStatus_ORDER_STATUS_PAYMENT_AUTHORIZED,
		orderv1.OrderStatus_ORDER_STATUS_INVENTORY_RESERVED,
		orderv1.OrderStatus_ORDER_STATUS_SHIPMENT_CREATED,
		orderv1.OrderStatus_ORDER_STATUS_PAYMENT_CAPTURED,
		orderv1.OrderStatus_ORDER_STATUS_COMPLETED,
	}
	for i, step := range fulfil {
		if _, err := e.repo.Update(t.Context(), id, step); err != nil {
			t.Fatal(err)
		}
		// One change at a time, so none is coalesced with the next.
		o := recv(t, w)
		if o.GetVersion() != int64(i+2) || o.GetStatus() != want[i] {
			t.Fatalf("state %d = %v at version %d, want %v at %d", i+2, o.GetStatus(), o.GetVersion(), want[i], i+2)
		}
	}
	if _, err := w.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after COMPLETED: %v, want the stream to end", err)
	}

	// A watch of a finished order sends it once and ends.
	w = e.watch(t, "alice", id)
	if o := recv(t, w); o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
		t.Fatalf("finished order = %v", o)
	}
	if _, err := w.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("watch of a finished order: %v, want the stream to end", err)
	}
}

func TestWatchOrderAnswersLikeGetOrder(t *testing.T) {
	e := start(t)
	placed, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest("watch-key-2", item("french-press", 1)))
	if err != nil {
		t.Fatal(err)
	}
	id := placed.GetOrderId()
	watchErr := func(user, id string) error {
		t.Helper()
		_, err := e.watch(t, user, id).Recv()
		if err == nil {
			t.Fatalf("%s watching %s: got an order, want an error", user, id)
		}
		return err
	}

	// Asked before and after the projection has the order, a stranger learns
	// nothing: the same status as GetOrder gives, whether the order exists or not.
	early := watchErr("bob", id)
	recv(t, e.watch(t, "alice", id)) // projected now
	_, getErr := e.orders.GetOrder(e.as(t, "bob"), &orderv1.GetOrderRequest{OrderId: id})
	wantCode(t, getErr, codes.NotFound)
	unknown := watchErr("alice", "0195f3a0-0000-7000-8000-000000000000")
	for name, err := range map[string]error{"bob before projection": early, "bob after": watchErr("bob", id), "unknown order": unknown} {
		if got, want := status.Convert(err), status.Convert(getErr); got.Code() != want.Code() || got.Message() != want.Message() {
			t.Errorf("%s: %v, want GetOrder's %v", name, err, getErr)
		}
	}
	hist, err := e.orders.GetOrderHistory(e.as(t, "alice"), &orderv1.GetOrderHistoryRequest{OrderId: id})
	if err != nil || len(hist.GetEntries()) != 1 {
		t.Fatalf("alice's order after bob's watches: %v, %v; want it untouched", hist.GetEntries(), err)
	}

	err = watchErr("alice", "not-a-uuid")
	wantCode(t, err, codes.InvalidArgument)
	var field string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			field = br.GetFieldViolations()[0].GetField()
		}
	}
	if field != "order_id" {
		t.Errorf("violation names %q, want order_id (error %v)", field, err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), watchWait)
	defer cancel()
	anon, err := e.orders.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
	if err == nil {
		_, err = anon.Recv()
	}
	wantCode(t, err, codes.Unauthenticated)
}

// Watchers that never read must not hold the projector back: the orders they watch
// and every other order still reach their final state in the read model.
func TestWatchersThatNeverReadDoNotStallTheProjection(t *testing.T) {
	e := start(t)
	place := func(key string) string {
		t.Helper()
		placed, err := e.orders.PlaceOrder(e.as(t, "alice"), placeRequest(key, item("french-press", 1)))
		if err != nil {
			t.Fatal(err)
		}
		return placed.GetOrderId()
	}
	stalled := place("watch-stalled")
	for range 20 {
		e.watch(t, "alice", stalled) // never read
	}
	complete := func(id string) {
		t.Helper()
		for _, step := range fulfil {
			if _, err := e.repo.Update(t.Context(), id, step); err != nil {
				t.Fatal(err)
			}
		}
	}
	complete(stalled)
	for i := range 3 {
		id := place("watch-other-" + string(rune('a'+i)))
		complete(id)
		w := e.watch(t, "alice", id)
		var last *orderv1.Order
		for {
			resp, err := w.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("watching %s past stalled watchers: %v", id, err)
			}
			last = resp.GetOrder()
		}
		if last.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPLETED {
			t.Fatalf("order %s ended its watch at %v, want COMPLETED", id, last.GetStatus())
		}
	}
}
