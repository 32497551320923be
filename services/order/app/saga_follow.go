package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/resilience"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/services/order/domain"
)

// OrderOrchestrator is the order saga's orchestrator.
type OrderOrchestrator = saga.Orchestrator[*orderv1.OrderSagaData]

// SagaFollower finishes what a user's cancellation interrupted. The order saga keeps
// its log in the order's own stream (saga.WithCategory(Category)), started in the
// same append as OrderPlaced (SagaStartAppend), so there is nothing to start and
// nothing to copy: the order, its read model and its history read the saga's
// transitions directly (Codec.Decode). What remains is one duty the engine leaves
// to its user. When a user's cancellation fails a step whose command is out, the
// participant may have done that step, and the engine compensates only the steps
// that answered; the follower reads the order category and sends that step's
// compensation itself (see undoInterrupted).
//
// It handles many orders at once (WithFollowerWorkers), each order's events one at
// a time and in order. Without checkpoints it reads the category from the start
// when the process starts, a cost that grows with history. With WithCheckpoints it
// resumes where it stopped, give or take the events of the last save interval,
// which it handles again to no effect (the compensation's id is deterministic).
// Several order service instances may run it at once: they send the same
// compensation, which participants deduplicate by id.
type SagaFollower struct {
	orch *OrderOrchestrator
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
func NewSagaFollower(orch *OrderOrchestrator, store eventstore.Store, send saga.Transport, opts ...FollowerOption) *SagaFollower {
	if orch == nil || store == nil || send == nil {
		panic("saga follower: nil dependency")
	}
	f := &SagaFollower{orch: orch, store: store, send: send, logger: slog.Default(), workers: DefaultFollowerWorkers}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Run follows the order category until ctx ends, restarting after a failure from
// the last event it handled (with backoff). It returns nil once ctx ends.
func (f *SagaFollower) Run(ctx context.Context) error {
	f.loop(ctx, followerName, nil, nil, Category, f.onOrderEvent)
	return nil
}

// followerName names the follower's checkpoint; "<name>#<k>" is partition k's.
const followerName = "orders"

// RunPartitions is Run for one of several order instances: it follows only the
// orders of the partitions owned (of parts; see pkg/partition), under a checkpoint
// per partition, each first taken from Run's. The group runs it again with the new
// set whenever that changes; with an empty set it waits for ctx to end.
func (f *SagaFollower) RunPartitions(ctx context.Context, parts int, owned []int) error {
	if len(owned) == 0 {
		<-ctx.Done()
		return nil
	}
	names := make([]string, len(owned))
	for i, k := range owned {
		names[i] = followerName + "#" + strconv.Itoa(k)
	}
	mine := func(e eventstore.Event) bool { return slices.Contains(owned, eventstore.Partition(e.Stream, parts)) }
	f.loop(ctx, followerName, names, mine, Category, f.onOrderEvent)
	return nil
}

// loop follows category from the checkpoint name, or, with parts, from the lowest of
// the checkpoints named there (one missing starts where name's is), handing h the
// events mine accepts (all when nil) and saving every checkpoint as it goes.
func (f *SagaFollower) loop(ctx context.Context, name string, parts []string, mine func(eventstore.Event) bool, category string, h eventstore.Handler) {
	names := []string{name}
	if len(parts) > 0 {
		names = parts
	}
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
		for _, n := range names {
			if err := f.checkpoints.Save(ctx, n, p); err != nil {
				f.logger.WarnContext(ctx, "saga follower checkpoint not saved", "follower", n, "error", err)
				return
			}
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
	pauses := resilience.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second}
	var progressed atomic.Bool // since the last failure: start the pauses again
	for {
		var err error
		if !loaded {
			var p eventstore.Position
			if p, err = f.lowest(ctx, name, parts); err == nil {
				pos.Store(uint64(p))
				saved, loaded = p, true
			}
		}
		if loaded {
			err = eventstore.SubscribePartitioned(ctx, f.store, category, eventstore.Position(pos.Load()), func(ctx context.Context, e eventstore.Event) error {
				if mine != nil && !mine(e) {
					return nil
				}
				// The saga starts inside the trace of the request that placed the order.
				ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(e.Metadata))
				return h(ctx, e)
			}, eventstore.PartitionedOptions{Workers: f.workers, Progress: func(p eventstore.Position) {
				pos.Store(uint64(p))
				progressed.Store(true)
			}})
		}
		if ctx.Err() != nil {
			return
		}
		if progressed.Swap(false) {
			pauses.Reset()
		}
		pause := pauses.Next()
		f.logger.WarnContext(ctx, "saga follower failed; restarting", "follower", names, "error", err, "backoff", pause)
		if resilience.Sleep(ctx, pause) != nil {
			return
		}
	}
}

// lowest returns the checkpoint of name, or with parts the lowest of theirs, where
// one never saved counts as name's.
func (f *SagaFollower) lowest(ctx context.Context, name string, parts []string) (eventstore.Position, error) {
	base, err := f.checkpoints.Load(ctx, name)
	if err != nil || len(parts) == 0 {
		return base, err
	}
	low := eventstore.Position(math.MaxUint64)
	for _, n := range parts {
		p, err := f.checkpoints.Load(ctx, n)
		if err != nil {
			return 0, err
		}
		if p == eventstore.Start {
			p = base
		}
		low = min(low, p)
	}
	return low, nil
}

// onOrderEvent sends the compensation of a step that a user's cancellation failed.
func (f *SagaFollower) onOrderEvent(ctx context.Context, e eventstore.Event) error {
	if e.Type != string(proto.MessageName(&sagav1.StepFailed{})) {
		return nil
	}
	_, id, err := eventstore.ParseStream(e.Stream)
	if err != nil {
		return nil
	}
	ev, err := saga.DecodeEvent(e)
	if err != nil {
		f.logger.ErrorContext(ctx, "undecodable saga event", "order_id", id, "error", err)
		return nil
	}
	failed := ev.(*sagav1.StepFailed)
	if failed.GetReplyType() != string(proto.MessageName(&orderv1.OrderCancelling{})) {
		return nil
	}
	return f.undoInterrupted(ctx, id, int(failed.GetStep()), failed.GetStepName())
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
}

var _ SagaCanceller = SagaCancel{}

// CancelForUser implements SagaCanceller: it feeds the saga the user's
// OrderCancelling as the failure of its step in progress, then reads whether the
// saga is compensating (accepted) or went on (refused: only the steps up to the
// shipment fail on it). The saga's StepFailed is the record of the cancellation,
// in the order's own stream. It returns the store's errors, and ErrUnavailable
// for an order without a saga (placed while sagas were off).
func (s SagaCancel) CancelForUser(ctx context.Context, o *domain.Order, reason string) (bool, error) {
	id := o.ID()
	cancel := &orderv1.OrderCancelling{OrderId: id, Reason: reason, RequestedByUser: true}
	if err := s.Orch.Interrupt(ctx, saga.Reply{SagaID: id, ID: "user-cancel/" + id, Msg: cancel}); err != nil {
		return false, err
	}
	st, err := s.Orch.Get(ctx, id)
	if errors.Is(err, saga.ErrNotFound) {
		return false, fmt.Errorf("order %s has no saga: %w", id, ErrUnavailable)
	}
	if err != nil {
		return false, err
	}
	return st.Status == saga.Compensating || st.Status == saga.Cancelled, nil
}

// SagaStartAppend returns the append that stores a new order's OrderPlaced and the
// start of its saga as one commit, so no crash can leave a placed order without
// its saga. It reports errExists when the order's stream exists.
func SagaStartAppend(orch *OrderOrchestrator) NewStreamAppend {
	return func(ctx context.Context, id string, decided []domain.Event, stored []eventstore.Event) (eventstore.Version, error) {
		placed, ok := decided[0].(*orderv1.OrderPlaced)
		if !ok || len(decided) != 1 {
			return 0, fmt.Errorf("start the saga of order %s: want one OrderPlaced, got %d events: %w", id, len(decided), domain.ErrInvalidOrder)
		}
		v, err := orch.StartWith(ctx, id, sagaData(placed), eventstore.NoStream, stored...)
		if errors.Is(err, saga.ErrAlreadyStarted) || errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return 0, errExists
		}
		return v, err
	}
}
