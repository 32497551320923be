package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	inventoryv1 "github.com/eventshop/eventshop/gen/go/eventshop/inventory/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	paymentv1 "github.com/eventshop/eventshop/gen/go/eventshop/payment/v1"
	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	shippingv1 "github.com/eventshop/eventshop/gen/go/eventshop/shipping/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/services/order/domain"
)

// OrderOrchestrator is the order saga's orchestrator.
type OrderOrchestrator = saga.Orchestrator[*orderv1.OrderSagaData]

// SagaFollower ties orders and their sagas together through the two event
// categories, never through a call that a crash could cut in half:
//
//   - FollowOrders reads the order category: every OrderPlaced starts its saga
//     (keyed by order id, so a replay finds it started) and every OrderCancelling
//     asked by the user is fed to the saga as a failure of the step in progress.
//     A crash between appending OrderPlaced and starting the saga therefore
//     strands nothing: the placed event is read again after the restart.
//   - FollowSagas reads the saga category and records every transition on the
//     order aggregate (payment authorized, inventory reserved, shipment created,
//     payment captured, completed, cancelling, cancelled), so the read model shows
//     the progress. Every domain command it issues is idempotent, so a replay
//     changes nothing.
//
// Each follower handles many orders at once (WithFollowerWorkers), each order's
// events one at a time and in order: a transition costs a few store round trips,
// and one line of them across all orders would cap the shop's throughput.
//
// Without checkpoints both read their category from the start when the process
// starts, a cost that grows with history. With WithCheckpoints they resume where
// they stopped, give or take the events of the last save interval, which they
// handle again to no effect. Several order service instances may run followers at
// once: they race through the same idempotent commands (OCC keeps the aggregate
// right) and share the checkpoints, so the slower one may make a restart replay more.
type SagaFollower struct {
	orch *OrderOrchestrator
	repo *Repository
	// store holds both categories.
	store eventstore.Store
	// send delivers the compensation of a step a user's cancellation interrupted.
	send   saga.Transport
	logger *slog.Logger

	checkpoints Checkpoints
	saveEvery   time.Duration
	workers     int
}

// Checkpoints remembers how far each follower read its category.
type Checkpoints interface {
	// Load returns the saved position of follower name, eventstore.Start if none.
	Load(ctx context.Context, name string) (eventstore.Position, error)
	// Save records that every event of follower name up to pos was handled.
	Save(ctx context.Context, name string, pos eventstore.Position) error
}

// FollowerOption configures NewSagaFollower.
type FollowerOption func(*SagaFollower)

// WithCheckpoints saves each follower's position in cp at most every interval
// (default 1s) and when it stops, and starts from the saved one.
func WithCheckpoints(cp Checkpoints, interval time.Duration) FollowerOption {
	return func(f *SagaFollower) {
		f.checkpoints = cp
		f.saveEvery = interval
		if f.saveEvery <= 0 {
			f.saveEvery = time.Second
		}
	}
}

// DefaultFollowerWorkers is how many orders each follower handles at once.
const DefaultFollowerWorkers = 32

// WithFollowerWorkers sets how many orders each follower handles at once (default
// DefaultFollowerWorkers). Each order's own events are still handled one at a time
// and in order; n = 1 makes a follower strictly sequential.
func WithFollowerWorkers(n int) FollowerOption {
	return func(f *SagaFollower) {
		if n > 0 {
			f.workers = n
		}
	}
}

// WithFollowerLogger sets the logger (default slog.Default()).
func WithFollowerLogger(l *slog.Logger) FollowerOption {
	return func(f *SagaFollower) {
		if l != nil {
			f.logger = l
		}
	}
}

// NewSagaFollower returns a follower; it panics on a nil dependency.
func NewSagaFollower(orch *OrderOrchestrator, repo *Repository, store eventstore.Store, send saga.Transport, opts ...FollowerOption) *SagaFollower {
	if orch == nil || repo == nil || store == nil || send == nil {
		panic("saga follower: nil dependency")
	}
	f := &SagaFollower{orch: orch, repo: repo, store: store, send: send, logger: slog.Default(), workers: DefaultFollowerWorkers}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Run follows both categories until ctx ends, restarting a follower that fails
// from the last event it handled (with backoff). It returns nil once ctx ends.
func (f *SagaFollower) Run(ctx context.Context) error {
	done := make(chan struct{}, 2)
	go func() { f.loop(ctx, "orders", Category, f.onOrderEvent); done <- struct{}{} }()
	go func() { f.loop(ctx, "sagas", saga.Category, f.onSagaEvent); done <- struct{}{} }()
	<-done
	<-done
	return nil
}

func (f *SagaFollower) loop(ctx context.Context, name, category string, h eventstore.Handler) {
	var pos atomic.Uint64 // every event at or before it was handled
	var mu sync.Mutex     // serialises saves
	var saved eventstore.Position
	save := func(ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		p := eventstore.Position(pos.Load())
		if f.checkpoints == nil || p == saved {
			return
		}
		if err := f.checkpoints.Save(ctx, name, p); err != nil {
			f.logger.WarnContext(ctx, "saga follower checkpoint not saved", "follower", name, "error", err)
			return
		}
		saved = p
	}
	if f.checkpoints != nil {
		go func() {
			t := time.NewTicker(f.saveEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					save(ctx)
				}
			}
		}()
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		save(ctx)
	}()
	loaded := f.checkpoints == nil
	backoff := 100 * time.Millisecond
	for {
		var err error
		if !loaded {
			var p eventstore.Position
			if p, err = f.checkpoints.Load(ctx, name); err == nil {
				pos.Store(uint64(p))
				saved, loaded = p, true
			}
		}
		if loaded {
			err = eventstore.SubscribePartitioned(ctx, f.store, category, eventstore.Position(pos.Load()), func(ctx context.Context, e eventstore.Event) error {
				// The saga starts inside the trace of the request that placed the order.
				ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(e.Metadata))
				return h(ctx, e)
			}, eventstore.PartitionedOptions{Workers: f.workers, Progress: func(p eventstore.Position) {
				pos.Store(uint64(p))
				backoff = 100 * time.Millisecond
			}})
		}
		if ctx.Err() != nil {
			return
		}
		f.logger.WarnContext(ctx, "saga follower failed; restarting", "follower", name, "error", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// onOrderEvent starts sagas and forwards user cancellations.
func (f *SagaFollower) onOrderEvent(ctx context.Context, e eventstore.Event) error {
	switch e.Type {
	case domain.EventType(&orderv1.OrderPlaced{}):
		ev, err := f.repo.Codec().Decode(e)
		if err != nil {
			f.logger.ErrorContext(ctx, "undecodable OrderPlaced; no saga started", "event_id", e.ID, "error", err)
			return nil
		}
		placed := ev.(*orderv1.OrderPlaced)
		err = f.orch.Start(ctx, placed.GetOrderId(), sagaData(placed))
		switch {
		case err == nil, errors.Is(err, saga.ErrAlreadyStarted):
			return nil
		case errors.Is(err, saga.ErrInvalidID):
			f.logger.ErrorContext(ctx, "order id cannot name a saga", "order_id", placed.GetOrderId(), "error", err)
			return nil
		}
		return fmt.Errorf("start saga of order %s: %w", placed.GetOrderId(), err)
	case domain.EventType(&orderv1.OrderCancelling{}):
		ev, err := f.repo.Codec().Decode(e)
		if err != nil {
			return nil
		}
		c := ev.(*orderv1.OrderCancelling)
		if !c.GetRequestedByUser() {
			return nil // recorded from the saga itself
		}
		return f.orch.HandleReply(ctx, saga.Reply{SagaID: c.GetOrderId(), ID: e.ID, Msg: c})
	}
	return nil
}

// onSagaEvent records a saga transition on its order.
func (f *SagaFollower) onSagaEvent(ctx context.Context, e eventstore.Event) error {
	_, id, err := eventstore.ParseStream(e.Stream)
	if err != nil {
		return nil
	}
	ev, err := decodeSagaEvent(e)
	if ev == nil || err != nil {
		return nil
	}
	switch ev := ev.(type) {
	case *sagav1.StepSucceeded:
		reply, err := decodeReply(ev.GetReplyType(), ev.GetReply())
		if err != nil {
			f.logger.ErrorContext(ctx, "undecodable saga reply", "saga_id", id, "error", err)
			return nil
		}
		return f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return recordStep(o, reply) })
	case *sagav1.StepFailed:
		reply, _ := decodeReply(ev.GetReplyType(), ev.GetReply())
		if c, ok := reply.(*orderv1.OrderCancelling); ok {
			// The saga accepted a user's cancellation, which CancelOrder records on
			// the order right after: record it here too, in case that never happened.
			if err := f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.RequestCancel(c.GetReason(), true) }); err != nil {
				return err
			}
			return f.undoInterrupted(ctx, id, int(ev.GetStep()), ev.GetStepName())
		}
		reason := failureReason(ev.GetStepName(), reply, ev.GetReason())
		return f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.RequestCancel(reason, false) })
	case *sagav1.StepTimedOut:
		if ev.GetRetryTime() != nil {
			return nil
		}
		reason := fmt.Sprintf("step %s did not answer", ev.GetStepName())
		return f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.RequestCancel(reason, false) })
	case *sagav1.SagaCancelled:
		reason := ev.GetReason()
		if err := f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.RequestCancel(reason, false) }); err != nil {
			return err
		}
		return f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.ConfirmCancelled() })
	case *sagav1.SagaCompleted:
		return f.record(ctx, id, func(o *domain.Order) ([]domain.Event, error) { return o.Complete() })
	}
	return nil
}

// record applies decide to order id. Refusals of the domain (an order cancelled by
// its user meanwhile, a saga of another definition) are logged and skipped; only
// store errors are returned, so the event is handled again.
func (f *SagaFollower) record(ctx context.Context, id string, decide func(o *domain.Order) ([]domain.Event, error)) error {
	_, err := f.repo.Update(ctx, id, func(o *domain.Order) ([]domain.Event, error) {
		if o.State() == domain.StateNew {
			return nil, ErrNotFound
		}
		return decide(o)
	})
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
		return nil
	case errors.Is(err, domain.ErrIllegalTransition), errors.Is(err, domain.ErrConflict),
		errors.Is(err, domain.ErrInvalidOrder):
		f.logger.WarnContext(ctx, "saga transition not recorded on the order", "order_id", id, "error", err)
		return nil
	}
	return fmt.Errorf("record saga transition on order %s: %w", id, err)
}

// recordStep is the order's side of a step succeeding with reply.
func recordStep(o *domain.Order, reply proto.Message) ([]domain.Event, error) {
	money := func(m *commonv1.Money) domain.Money { return domain.NewMoney(m.GetMinorUnits(), m.GetCurrencyCode()) }
	switch r := reply.(type) {
	case *paymentv1.PaymentAuthorized:
		return o.RecordPaymentAuthorized(r.GetPaymentId(), money(r.GetAmount()))
	case *inventoryv1.InventoryReserved:
		return o.RecordInventoryReserved(r.GetReservationId())
	case *shippingv1.ShipmentCreated:
		return o.RecordShipmentCreated(r.GetShipmentId(), r.GetTrackingId())
	case *paymentv1.PaymentCaptured:
		return o.RecordPaymentCaptured(r.GetPaymentId(), money(r.GetAmount()))
	}
	return nil, nil // the commit: the order completes with SagaCompleted
}

// undoInterrupted sends the compensation of step i, which a user's cancellation
// failed while its command was out: the participant may have done it, and the
// engine compensates only the steps that answered. The id is deterministic, so a
// replay is deduplicated; the participant answers even when there is nothing to
// undo (and refuses the original command afterwards). The saga ignores the reply.
func (f *SagaFollower) undoInterrupted(ctx context.Context, id string, i int, name string) error {
	undo := undoFor(i)
	if undo == nil {
		return nil
	}
	st, err := f.orch.Get(ctx, id)
	if errors.Is(err, saga.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	data := &orderv1.OrderSagaData{}
	for _, h := range st.History {
		var raw []byte
		switch ev := h.Event.(type) {
		case *sagav1.SagaStarted:
			raw = ev.GetData()
		case *sagav1.StepSucceeded:
			raw = ev.GetData()
		}
		if len(raw) > 0 {
			data = &orderv1.OrderSagaData{}
			if err := proto.Unmarshal(raw, data); err != nil {
				return fmt.Errorf("saga %s data: %w", id, err)
			}
		}
	}
	req, err := undo(data, nil)
	if err != nil {
		return err
	}
	return f.send.Send(ctx, saga.Command{
		ID: fmt.Sprintf("%s/%d/undo/cancelled", id, i), SagaID: id, Step: name, Compensation: true, Attempt: 1, Request: req,
	})
}

// decodeSagaEvent returns the saga event e holds, nil for another type.
func decodeSagaEvent(e eventstore.Event) (proto.Message, error) {
	var m proto.Message
	switch e.Type {
	case string(proto.MessageName(&sagav1.StepSucceeded{})):
		m = &sagav1.StepSucceeded{}
	case string(proto.MessageName(&sagav1.StepFailed{})):
		m = &sagav1.StepFailed{}
	case string(proto.MessageName(&sagav1.StepTimedOut{})):
		m = &sagav1.StepTimedOut{}
	case string(proto.MessageName(&sagav1.SagaCancelled{})):
		m = &sagav1.SagaCancelled{}
	case string(proto.MessageName(&sagav1.SagaCompleted{})):
		m = &sagav1.SagaCompleted{}
	default:
		return nil, nil
	}
	return m, proto.Unmarshal(e.Data, m)
}

// decodeReply decodes a reply stored in a saga event by its full type name.
func decodeReply(typ string, data []byte) (proto.Message, error) {
	if typ == "" {
		return nil, nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return nil, fmt.Errorf("reply type %s: %w", typ, err)
	}
	m := mt.New().Interface()
	return m, proto.Unmarshal(data, m)
}

// SagaCancel is the SagaCanceller of the order saga.
type SagaCancel struct {
	Orch *OrderOrchestrator
	Repo *Repository
}

var _ SagaCanceller = SagaCancel{}

// CancelForUser implements SagaCanceller: it feeds the saga the user's
// OrderCancelling as the failure of its step in progress, then reads whether the
// saga is compensating (accepted) or went on (refused: only the steps up to the
// shipment fail on it). A saga not started yet is started first from the order's
// OrderPlaced (the follower's own start then finds it started), so the decision is
// never left to a saga that could run past the shipment meanwhile. It returns the
// store's errors and saga.ErrInvalidID.
func (s SagaCancel) CancelForUser(ctx context.Context, o *domain.Order, reason string) (bool, error) {
	id := o.ID()
	if _, err := s.Orch.Get(ctx, id); errors.Is(err, saga.ErrNotFound) {
		placed, err := s.placed(ctx, id)
		if err != nil {
			return false, err
		}
		if err := s.Orch.Start(ctx, id, sagaData(placed)); err != nil && !errors.Is(err, saga.ErrAlreadyStarted) {
			return false, err
		}
	} else if err != nil {
		return false, err
	}
	cancel := &orderv1.OrderCancelling{OrderId: id, Reason: reason, RequestedByUser: true}
	if err := s.Orch.HandleReply(ctx, saga.Reply{SagaID: id, ID: "user-cancel/" + id, Msg: cancel}); err != nil {
		return false, err
	}
	st, err := s.Orch.Get(ctx, id)
	if err != nil {
		return false, err
	}
	return st.Status == saga.Compensating || st.Status == saga.Cancelled, nil
}

func (s SagaCancel) placed(ctx context.Context, id string) (*orderv1.OrderPlaced, error) {
	h, err := s.Repo.History(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(h) > 0 {
		if p, ok := h[0].Event.(*orderv1.OrderPlaced); ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("order %s does not start with OrderPlaced: %w", id, domain.ErrInvalidEvent)
}
