package app_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/saga/sagatest"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// participants answers saga commands by subject; a subject without an answer is
// left unanswered (a participant that is down).
type participants map[string]func(c saga.Command) proto.Message

func happyParticipants() participants {
	return participants{
		app.SubjectAuthorizePayment: func(c saga.Command) proto.Message {
			m := c.Msg.(*paymentv1.AuthorizePayment)
			return &paymentv1.PaymentAuthorized{OrderId: m.GetOrderId(), PaymentId: "pay-1", Amount: m.GetAmount()}
		},
		app.SubjectReserveInventory: func(c saga.Command) proto.Message {
			return &inventoryv1.InventoryReserved{OrderId: c.SagaID, ReservationId: "res-1"}
		},
		app.SubjectCreateShipment: func(c saga.Command) proto.Message {
			return &shippingv1.ShipmentCreated{OrderId: c.SagaID, ShipmentId: "ship-1", TrackingId: "TRACK-1"}
		},
		app.SubjectCapturePayment: func(c saga.Command) proto.Message {
			m := c.Msg.(*paymentv1.CapturePayment)
			return &paymentv1.PaymentCaptured{OrderId: m.GetOrderId(), PaymentId: m.GetPaymentId(), Amount: m.GetAmount()}
		},
		app.SubjectCommitReservation: func(c saga.Command) proto.Message {
			return &inventoryv1.ReservationCommitted{OrderId: c.SagaID, ReservationId: "res-1"}
		},
		app.SubjectVoidAuthorization: func(c saga.Command) proto.Message {
			return &paymentv1.AuthorizationVoided{OrderId: c.SagaID}
		},
		app.SubjectReleaseInventory: func(c saga.Command) proto.Message {
			return &inventoryv1.InventoryReleased{OrderId: c.SagaID}
		},
		app.SubjectCancelShipment: func(c saga.Command) proto.Message {
			return &shippingv1.ShipmentCancelled{OrderId: c.SagaID}
		},
		app.SubjectRefundPayment: func(c saga.Command) proto.Message {
			m := c.Msg.(*paymentv1.RefundPayment)
			return &paymentv1.PaymentRefunded{OrderId: c.SagaID, PaymentId: m.GetPaymentId(), Amount: m.GetAmount()}
		},
	}
}

type sagaEnv struct {
	stop func()
	repo *app.Repository
	tr   *sagatest.Transport
	orch *app.OrderOrchestrator
}

// startSaga runs the order saga and its follower on an in-memory store, with
// participants answering through the orchestrator as the reply consumer would.
func startSaga(t *testing.T, script participants, opts ...app.FollowerOption) *sagaEnv {
	t.Helper()
	return startSagaOn(t, eventstore.NewMemory(), script, opts...)
}

func startSagaOn(t *testing.T, store eventstore.Store, script participants, opts ...app.FollowerOption) *sagaEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	env := &sagaEnv{repo: app.NewRepository(store), tr: &sagatest.Transport{}}
	var err error
	env.orch, err = saga.New(app.OrderSaga(app.SagaConfig{StepTimeout: time.Hour}), store, env.tr, saga.WithCategory(app.Category))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	env.tr.OnSend = func(_ context.Context, c saga.Command) error {
		if answer := script[c.Subject]; answer != nil {
			// Answer later, as a participant does, not inside the orchestrator's send.
			wg.Go(func() {
				// The context ends with the test; a reply cut short then is no failure.
				if err := env.orch.HandleReply(ctx, saga.Reply{SagaID: c.SagaID, ID: "reply-" + c.ID, CausationID: c.ID, Msg: answer(c)}); err != nil && ctx.Err() == nil {
					t.Errorf("HandleReply %s: %v", c.ID, err)
				}
			})
		}
		return nil
	}
	follower := app.NewSagaFollower(env.orch, store, env.tr, opts...)
	wg.Go(func() { _ = env.orch.Run(ctx) })
	wg.Go(func() { _ = follower.Run(ctx) })
	env.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(env.stop)
	return env
}

// place stores an order and the start of its saga in one append, as PlaceOrder does.
func (e *sagaEnv) place(t *testing.T) string {
	t.Helper()
	id := newID(t)
	if _, err := e.repo.Create(t.Context(), id, func(o *domain.Order) ([]domain.Event, error) {
		return o.Place(placeParams(id, "alice"))
	}, app.SagaStartAppend(e.orch)); err != nil {
		t.Fatal(err)
	}
	return id
}

// await polls the aggregate until cond holds.
func (e *sagaEnv) await(t *testing.T, id string, what string, cond func(o *domain.Order) bool) *domain.Order {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := e.repo.Load(t.Context(), id)
		if err == nil && cond(o) {
			return o
		}
		if time.Now().After(deadline) {
			state := "not found"
			if o != nil {
				state = o.State().String()
			}
			t.Fatalf("order %s never %s: %s %v", id, what, state, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *sagaEnv) awaitState(t *testing.T, id string, want domain.State) *domain.Order {
	t.Helper()
	return e.await(t, id, want.String(), func(o *domain.Order) bool { return o.State() == want })
}

func (e *sagaEnv) subjects() []string {
	var out []string
	for _, c := range e.tr.Sent() {
		out = append(out, c.Subject)
	}
	return out
}

func TestOrderSagaCompletesAndRecordsEveryStep(t *testing.T) {
	store := eventstore.NewMemory()
	env := startSagaOn(t, store, happyParticipants())
	id := env.place(t)
	o := env.awaitState(t, id, domain.StateCompleted)
	// Each fact is written once: the order's stream is the saga's log, and holds
	// one commit for the placement with the saga's start and one per reply.
	evs, err := store.ReadStream(t.Context(), app.StreamName(id), 1)
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Type != domain.EventType(&orderv1.OrderPlaced{}) || evs[1].Type != "eventshop.saga.v1.SagaStarted" {
		t.Fatalf("stream starts %s, %s; want OrderPlaced with the saga's start", evs[0].Type, evs[1].Type)
	}
	for _, e := range evs[1:] {
		if !strings.HasPrefix(e.Type, "eventshop.saga.v1.") {
			t.Errorf("order event %s v%d written beside the saga's log", e.Type, e.Version)
		}
	}
	if _, err := store.ReadStream(t.Context(), saga.StreamName(id), 1); err == nil {
		t.Error("a separate saga stream was written")
	}
	// The history shows the order's own facts only, at the stream's versions, and
	// the order at the stream's last version is the completed one.
	q := app.NewQueries(env.repo)
	h, err := q.History(t.Context(), "alice", id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range h {
		types = append(types, strings.TrimPrefix(e.Type, "eventshop.order.v1."))
	}
	wantTypes := []string{"OrderPlaced", "OrderPaymentAuthorized", "OrderInventoryReserved", "OrderShipmentCreated", "OrderPaymentCaptured", "OrderCompleted"}
	if !slices.Equal(types, wantTypes) {
		t.Fatalf("history %v, want %v", types, wantTypes)
	}
	if last := h[len(h)-1].Version; last != int64(len(evs)) {
		t.Errorf("OrderCompleted at version %d, want the stream's last, %d", last, len(evs))
	}
	at, err := q.At(t.Context(), "alice", id, int64(len(evs)))
	if err != nil || at.Order.State() != domain.StateCompleted || at.Order.Version() != int64(len(evs)) {
		t.Fatalf("order at the last version: %v, %v", at.Order, err)
	}
	if o.PaymentID() != "pay-1" || o.ReservationID() != "res-1" || o.ShipmentID() != "ship-1" || o.TrackingID() != "TRACK-1" || !o.PaymentCaptured() {
		t.Fatalf("completed order misses a step: %+v", o.Snapshot())
	}
	want := []string{app.SubjectAuthorizePayment, app.SubjectReserveInventory, app.SubjectCreateShipment, app.SubjectCapturePayment, app.SubjectCommitReservation}
	if got := env.subjects(); !slices.Equal(got, want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	capture := env.tr.Sent()[3].Msg.(*paymentv1.CapturePayment)
	if capture.GetPaymentId() != "pay-1" || capture.GetAmount().GetMinorUnits() != o.Total().Units {
		t.Fatalf("capture %v", capture)
	}
}

func TestOrderSagaFailures(t *testing.T) {
	tests := []struct {
		name       string
		subject    string
		reply      func(c saga.Command) proto.Message
		wantReason string
		wantUndo   []string
	}{
		{
			name: "declined", subject: app.SubjectAuthorizePayment,
			reply: func(c saga.Command) proto.Message {
				return &paymentv1.PaymentDeclined{OrderId: c.SagaID, Reason: "the card was declined", Code: "card_declined"}
			},
			wantReason: "payment declined: the card was declined",
		},
		{
			name: "out of stock", subject: app.SubjectReserveInventory,
			reply: func(c saga.Command) proto.Message {
				return &inventoryv1.InventoryRejected{OrderId: c.SagaID, Reason: "short", ProductIds: []string{"burr-grinder"}}
			},
			wantReason: "out of stock: burr-grinder",
			wantUndo:   []string{app.SubjectVoidAuthorization},
		},
		{
			name: "shipping failed", subject: app.SubjectCreateShipment,
			reply: func(c saga.Command) proto.Message {
				return &shippingv1.ShipmentFailed{OrderId: c.SagaID, Reason: "carrier refused"}
			},
			wantReason: "shipment failed: carrier refused",
			wantUndo:   []string{app.SubjectReleaseInventory, app.SubjectVoidAuthorization},
		},
		{
			name: "commit failed", subject: app.SubjectCommitReservation,
			reply: func(c saga.Command) proto.Message {
				return &inventoryv1.ReservationCommitFailed{OrderId: c.SagaID, Reason: "reservation expired"}
			},
			wantReason: "stock could not be committed: reservation expired",
			wantUndo:   []string{app.SubjectRefundPayment, app.SubjectCancelShipment, app.SubjectReleaseInventory, app.SubjectVoidAuthorization},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := happyParticipants()
			script[tt.subject] = tt.reply
			env := startSaga(t, script)
			id := env.place(t)
			o := env.awaitState(t, id, domain.StateCancelled)
			if o.CancelReason() != tt.wantReason {
				t.Errorf("reason %q, want %q", o.CancelReason(), tt.wantReason)
			}
			var undos []string
			for _, c := range env.tr.Sent() {
				if c.Compensation {
					undos = append(undos, c.Subject)
				}
			}
			if !slices.Equal(undos, tt.wantUndo) {
				t.Errorf("compensations %v, want %v", undos, tt.wantUndo)
			}
		})
	}
}

func TestOrderSagaUserCancelCompensatesTheInterruptedStep(t *testing.T) {
	script := happyParticipants()
	delete(script, app.SubjectCreateShipment) // shipping is down: the saga waits there
	env := startSaga(t, script)
	id := env.place(t)
	env.await(t, id, "reserved", func(o *domain.Order) bool { return o.State() == domain.StateInventoryReserved })

	cancel := app.NewCancelOrder(env.repo).WithSagaCanceller(app.SagaCancel{Orch: env.orch})
	if _, err := cancel.Handle(t.Context(), app.CancelOrderCommand{UserID: "alice", OrderID: id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	o := env.awaitState(t, id, domain.StateCancelled)
	if o.CancelReason() != "changed my mind" {
		t.Errorf("reason %q", o.CancelReason())
	}
	var undos []string
	deadline := time.Now().Add(30 * time.Second)
	for len(undos) < 3 && time.Now().Before(deadline) {
		undos = undos[:0]
		for _, c := range env.tr.Sent() {
			if c.Compensation {
				undos = append(undos, c.Subject+" "+c.ID[strings.Index(c.ID, "/"):])
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(undos)
	want := []string{
		app.SubjectCancelShipment + " /2/undo/cancelled", // the step the cancellation interrupted
		app.SubjectVoidAuthorization + " /0/undo/1",
		app.SubjectReleaseInventory + " /1/undo/1",
	}
	slices.Sort(want)
	if !slices.Equal(undos, want) {
		t.Fatalf("compensations %v, want %v", undos, want)
	}
}

func TestOrderSagaRefusesUserCancelAfterShipment(t *testing.T) {
	script := happyParticipants()
	delete(script, app.SubjectCapturePayment) // the saga waits at the capture
	env := startSaga(t, script)
	id := env.place(t)
	env.awaitState(t, id, domain.StateShipmentCreated)
	cancel := app.NewCancelOrder(env.repo).WithSagaCanceller(app.SagaCancel{Orch: env.orch})
	_, err := cancel.Handle(t.Context(), app.CancelOrderCommand{UserID: "alice", OrderID: id})
	if err == nil {
		t.Fatal("cancel after the shipment succeeded")
	}
}

// memCheckpoints is an in-memory app.Checkpoints.
type memCheckpoints struct {
	mu  sync.Mutex
	pos map[string]eventstore.Position
}

func (m *memCheckpoints) Load(_ context.Context, name string) (eventstore.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos[name], nil
}

func (m *memCheckpoints) Save(_ context.Context, name string, pos eventstore.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos[name] = pos
	return nil
}

func TestSagaFollowerResumesFromItsCheckpoint(t *testing.T) {
	store := eventstore.NewMemory()
	cp := &memCheckpoints{pos: map[string]eventstore.Position{}}
	env := startSagaOn(t, store, happyParticipants(), app.WithCheckpoints(cp, time.Hour))
	first := env.place(t)
	env.awaitState(t, first, domain.StateCompleted)
	evs, err := store.ReadCategory(t.Context(), app.Category, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The order's state is final before the follower has necessarily read its last
	// events; stopping saves where it got to. Stop and start again until that is
	// the end (a stop never saves past what was handled, nor loses what was).
	want := evs[len(evs)-1].Position
	for deadline := time.Now().Add(10 * time.Second); ; {
		env.stop() // saves on the way out
		cp.mu.Lock()
		got := cp.pos["orders"]
		cp.mu.Unlock()
		if got > want {
			t.Fatalf("checkpoint at %d, past the last event %d", got, want)
		}
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint at %d, want the last event %d", got, want)
		}
		env = startSagaOn(t, store, happyParticipants(), app.WithCheckpoints(cp, time.Hour))
	}

	env = startSagaOn(t, store, happyParticipants(), app.WithCheckpoints(cp, time.Hour))
	second := env.place(t)
	env.awaitState(t, second, domain.StateCompleted)
}

// A follower of some partitions keeps one checkpoint per partition it follows,
// starting from the plain checkpoint when it has none, and never one of a partition
// it does not follow.
func TestSagaFollowerOfPartitionsKeepsTheirCheckpoints(t *testing.T) {
	store := eventstore.NewMemory()
	env := startSagaOn(t, store, happyParticipants())
	id := env.place(t)
	env.awaitState(t, id, domain.StateCompleted)
	evs, err := store.ReadCategory(t.Context(), app.Category, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1].Position

	const parts = 2
	mine := eventstore.Partition(app.Category+"-"+id, parts)
	cp := &memCheckpoints{pos: map[string]eventstore.Position{"orders": evs[0].Position}}
	f := app.NewSagaFollower(env.orch, store, env.tr, app.WithCheckpoints(cp, 10*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.RunPartitions(ctx, parts, []int{mine}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp.mu.Lock()
		got := cp.pos["orders#"+strconv.Itoa(mine)]
		cp.mu.Unlock()
		if got == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint of partition %d at %d, want %d", mine, got, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if _, ok := cp.pos["orders#"+strconv.Itoa(1-mine)]; ok {
		t.Errorf("checkpoints %v: one of a partition not followed", cp.pos)
	}
	if cp.pos["orders"] != evs[0].Position {
		t.Errorf("plain checkpoint moved to %d by a follower of partitions", cp.pos["orders"])
	}
}
