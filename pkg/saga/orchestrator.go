package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
)

// Category is the event-store category of saga streams: saga "<id>" is stream
// "saga-<id>". Every definition shares it; SagaStarted says which one a saga runs.
const Category = "saga"

// StreamName returns the stream of saga id.
func StreamName(id string) string { return Category + "-" + id }

var (
	// ErrAlreadyStarted is returned by Start when a saga with that id exists.
	ErrAlreadyStarted = errors.New("saga: already started")
	// ErrNotFound is returned by Get when no saga of the definition has that id.
	ErrNotFound = errors.New("saga: not found")
	// ErrInvalidID is returned by Start for an id that cannot name a stream (empty,
	// or containing whitespace, '.', '*' or '>').
	ErrInvalidID = errors.New("saga: invalid id")
	// ErrDefinitionMismatch is returned when a saga's log names steps other than
	// the definition's (the definition changed under sagas in flight).
	ErrDefinitionMismatch = errors.New("saga: log does not match definition")
)

// errUnknown marks a saga that does not exist or belongs to another definition.
var errUnknown = errors.New("saga: unknown saga")

// Option configures an Orchestrator.
type Option func(*options)

type options struct {
	clock       Clock
	logger      *slog.Logger
	meters      metric.MeterProvider
	resendAfter time.Duration
	category    string
}

// WithClock sets the clock (default SystemClock); tests pass sagatest.Clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider sets where metrics go (default the global otel.Meter).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meters = mp } }

// WithCategory keeps the sagas in event-store category c, saga id's log being stream
// "<c>-<id>", instead of Category. Such streams may be shared with other events,
// such as those of the aggregate a saga works for: the orchestrator reads only its
// own event types (eventshop.saga.v1.*) and counts the others only as versions, so
// another writer's append is one more optimistic-concurrency conflict, decided again
// like any other. StartWith records the first events of such a stream together with
// the saga's start.
func WithCategory(c string) Option { return func(o *options) { o.category = c } }

// WithResendInterval sets how soon Run retries a Send that failed (default 1s).
func WithResendInterval(d time.Duration) Option { return func(o *options) { o.resendAfter = d } }

// Orchestrator drives the sagas of one Definition. It is safe for concurrent use,
// and several instances (in one process or many) may drive the same sagas: every
// transition is an append with the expected version of the saga's stream, so of two
// instances deciding on the same saga one wins and the other reloads and decides
// again, and a command is sent only by the instance whose append recorded it.
//
// Drive it with Run, which resumes unfinished sagas, follows the saga category and
// fires timeouts; or, in tests, with Resume, HandleReply and Tick directly.
type Orchestrator[T proto.Message] struct {
	def       Definition[T]
	names     []string
	store     eventstore.Store
	transport Transport
	clock     Clock
	log       *slog.Logger
	metrics   *metrics
	resend    time.Duration
	wake      chan struct{}
	category  string

	mu      sync.Mutex
	sagas   map[string]*entry // unfinished sagas this instance tracks
	foreign map[string]bool   // sagas of other definitions
}

var _ ReplyReceiver = (*Orchestrator[*emptypb.Empty])(nil)

// entry is one tracked saga; mu serialises everything this instance does to it.
type entry struct {
	mu      sync.Mutex
	st      *state             // nil: reload from the store before use
	unsent  bool               // the command in progress may not have been sent
	sentAt  eventstore.Version // the saga's version when this instance last sent its command
	stuck   bool               // reported stuck by this instance
	gone    bool               // no longer tracked
	retryAt time.Time          // when to try loading again after a failed load
}

// batch collects the events of one transition, applied to a scratch state as they
// are emitted so that later decisions of the same transition see them.
type batch struct {
	st      *state
	leading []eventstore.Event // the caller's events, stored before the saga's
	now     time.Time
	cause   string // id of the reply that caused the transition, if any
	evs     []proto.Message
	cmd     *Command
	err     error
}

// New returns an orchestrator for def, storing saga logs in store and sending
// commands with tr. It returns ErrInvalidDefinition (wrapped) for a definition that
// cannot run, and panics if store or tr is nil: that is a wiring mistake.
func New[T proto.Message](def Definition[T], store eventstore.Store, tr Transport, opts ...Option) (*Orchestrator[T], error) {
	if store == nil || tr == nil {
		panic("saga: New needs a store and a transport")
	}
	if err := def.Validate(); err != nil {
		return nil, err
	}
	cfg := options{clock: SystemClock{}, logger: slog.Default(), resendAfter: time.Second, category: Category}
	for _, opt := range opts {
		opt(&cfg)
	}
	def = def.withDefaults()
	names := make([]string, len(def.Steps))
	for i, s := range def.Steps {
		names[i] = s.Name
	}
	return &Orchestrator[T]{
		def: def, names: names, store: store, transport: tr,
		clock: cfg.clock, log: cfg.logger.With("saga_definition", def.Name),
		metrics: newMetrics(cfg.meters, def.Name, names), resend: cfg.resendAfter,
		wake: make(chan struct{}, 1), category: cfg.category,
		sagas: map[string]*entry{}, foreign: map[string]bool{},
	}, nil
}

// stream returns the stream of saga id.
func (o *Orchestrator[T]) stream(id string) string { return o.category + "-" + id }

// Start begins saga id over data: it records SagaStarted and the first step, then
// sends the first command. It returns ErrInvalidID for an unusable id,
// ErrAlreadyStarted if the saga exists (so a repeated Start is recognisable), the
// first step's Do error, or the store's error. A failed Send is not an error: the
// command is recorded and Run sends it again.
func (o *Orchestrator[T]) Start(ctx context.Context, id string, data T) error {
	_, err := o.StartWith(ctx, id, data, eventstore.NoStream)
	return err
}

// StartWith is Start on a stream that may hold other events (see WithCategory): the
// leading events, which are not the saga's, are appended first in the same commit
// as SagaStarted and the first step, expecting the stream at version expected.
// Writing the fact that starts a saga and the saga's start as one append means no
// crash can leave one without the other. It returns the stream's version after the
// append, so the caller may keep its own state of the stream without reading it
// back. It returns ErrAlreadyStarted when the saga
// exists, the store's *eventstore.WrongExpectedVersionError when the stream is not
// at expected but holds no saga, and Start's other errors.
func (o *Orchestrator[T]) StartWith(ctx context.Context, id string, data T, expected eventstore.Version, leading ...eventstore.Event) (eventstore.Version, error) {
	if _, _, err := eventstore.ParseStream(o.stream(id)); err != nil {
		return 0, fmt.Errorf("%w %q: %w", ErrInvalidID, id, err)
	}
	raw, err := proto.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("saga: start %s: marshal data: %w", id, err)
	}
	if _, err := o.def.Steps[0].Do(data); err != nil {
		return 0, fmt.Errorf("saga: start %s: step %s: %w", id, o.names[0], err)
	}
	now := o.clock.Now()
	b := &batch{st: newState(id, len(o.names)), now: now, leading: leading}
	b.st.origin = trace.SpanContextFromContext(ctx)
	o.emit(b, &sagav1.SagaStarted{
		SagaId: id, Definition: o.def.Name, Data: raw,
		StuckTime: timestamppb.New(now.Add(o.def.StuckAfter)),
	})
	o.startStep(b, 0, 1)

	e := o.track(id)
	defer e.mu.Unlock()
	if err := o.commit(ctx, e, b, expected); err != nil {
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			if _, lerr := o.load(ctx, id); !errors.Is(lerr, errUnknown) || o.isForeign(id) {
				return 0, fmt.Errorf("%w: %s", ErrAlreadyStarted, id)
			}
		}
		o.untrack(id, e)
		return 0, fmt.Errorf("saga: start %s: %w", id, err)
	}
	o.notify()
	return b.st.version, nil
}

// HandleReply moves the saga r answers. A reply is ignored (nil is returned) when
// it names no command it answers (no causation id: the saga trusts only answers to
// what it asked, so a message merely of the right type, correlated with the saga,
// cannot move it), when its saga is unknown, of another definition or ended, when it
// answers no step or compensation in progress (a duplicate, or a late reply to a
// finished one), or when its type means nothing to the step in progress. It returns
// the store's error when the saga could not be read or the transition not recorded;
// delivering the reply again is then safe.
func (o *Orchestrator[T]) HandleReply(ctx context.Context, r Reply) error {
	if r.CausationID == "" {
		o.metrics.ignore(ctx, "uncaused")
		return nil
	}
	return o.handle(ctx, r, false)
}

// Interrupt feeds the saga a message that comes from this process itself, not from
// the bus, such as a user's cancellation: it needs no causation id and is matched by
// its type alone against the step or compensation in progress, as a reply would be.
// Never pass it anything a remote party sent. Errors and ignored messages are as for
// HandleReply.
func (o *Orchestrator[T]) Interrupt(ctx context.Context, r Reply) error {
	return o.handle(ctx, r, true)
}

func (o *Orchestrator[T]) handle(ctx context.Context, r Reply, trusted bool) error {
	if r.SagaID == "" || r.Msg == nil || o.isForeign(r.SagaID) {
		o.metrics.ignore(ctx, "unmatched")
		return nil
	}
	decide := func(b *batch) {
		b.cause = r.ID
		o.decideReply(b, r, trusted)
	}
	changed, err := o.drive(ctx, r.SagaID, nil, decide)
	if !changed && err == nil {
		// This instance's copy of the saga may be behind: another instance may have
		// moved it on, and a reply to the step it started then answers no step
		// here. Read the saga again before ignoring the reply, or the step would
		// wait for its timeout.
		o.forget(r.SagaID)
		changed, err = o.drive(ctx, r.SagaID, nil, decide)
	}
	if errors.Is(err, errUnknown) {
		err = nil
	}
	if !changed && err == nil {
		o.metrics.ignore(ctx, "unmatched")
	}
	if err != nil {
		return fmt.Errorf("saga: reply %s to %s: %w", r.ID, r.SagaID, err)
	}
	return nil
}

// ResumeSaga is Resume for one saga: it makes this instance drive saga id; it loads the saga if it does not track
// it, and sends the command the saga waits on unless this instance sent it. It is for
// a caller that learns of a saga it did not start here, or whose start failed after
// the store had kept it (an error on the way back from an append that succeeded): a
// retried request that finds its saga started calls it, so the saga does not wait for
// the next restart. The command id is the same as before, so participants take a
// command sent twice once. It returns nil for an unknown or ended saga, and the
// store's error otherwise.
func (o *Orchestrator[T]) ResumeSaga(ctx context.Context, id string) error {
	if o.isForeign(id) {
		return nil
	}
	_, err := o.drive(ctx, id, func(e *entry) bool {
		o.sendUnsent(ctx, e)
		return false
	}, nil)
	if errors.Is(err, errUnknown) {
		return nil
	}
	return err
}

// sendUnsent sends the command e's saga waits on unless this instance sent it at the
// saga's current version, and reports whether it sent: a saga this instance started
// or moved has had its command sent already, and sending it again would only make a
// duplicate.
func (o *Orchestrator[T]) sendUnsent(ctx context.Context, e *entry) bool {
	if !e.st.waiting || e.sentAt == e.st.version {
		return false
	}
	o.send(ctx, e)
	return true
}

// Tick does what is due at the clock's now for every saga this instance tracks:
// time out attempts, start retries after their backoff, resend commands whose Send
// failed, and report sagas that became stuck. Run calls it; tests call it after
// advancing a fake clock. It returns the joined errors of the sagas it could not
// move; they are tried again on the next Tick.
func (o *Orchestrator[T]) Tick(ctx context.Context) error {
	var errs []error
	for _, id := range o.needing(o.clock.Now()) {
		_, err := o.drive(ctx, id, func(e *entry) bool {
			o.chores(ctx, e)
			return !e.st.due.IsZero() && !o.clock.Now().Before(e.st.due)
		}, o.decideTimer)
		if err != nil && !errors.Is(err, errUnknown) {
			errs = append(errs, fmt.Errorf("saga %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// needing returns, sorted, the tracked sagas for which Tick has something to do at
// now. Looking at every entry costs a lock each; driving one costs far more, and
// with many sagas in flight a Tick that drove them all after every transition
// would make the orchestrator's work grow with the square of the sagas in flight.
func (o *Orchestrator[T]) needing(now time.Time) []string {
	o.mu.Lock()
	entries := maps.Clone(o.sagas)
	o.mu.Unlock()
	var ids []string
	for id, e := range entries {
		e.mu.Lock()
		need := !e.gone && (e.st == nil || e.unsent ||
			!e.st.due.IsZero() && !now.Before(e.st.due) ||
			!e.stuck && !now.Before(e.st.stuckAt))
		e.mu.Unlock()
		if need {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Resume finds the unfinished sagas of the definition in the store, tracks them and
// sends again the command each one is waiting on (same id, so a command that did go
// out before a crash is deduplicated). It reads the whole saga category once: the
// cost grows with every saga ever run (see README.md for how to bound it). It
// returns the joined errors of reading the category and of the sagas it could not load.
func (o *Orchestrator[T]) Resume(ctx context.Context) error {
	_, sagaErrs, err := o.resume(ctx)
	return errors.Join(err, sagaErrs)
}

// resume returns the category position it read up to, the joined errors of sagas it
// could not load, and the error that stopped the read.
func (o *Orchestrator[T]) resume(ctx context.Context) (pos eventstore.Position, sagaErrs, err error) {
	open := map[string]bool{}
	for {
		evs, err := o.store.ReadCategory(ctx, o.category, pos, 1000)
		if err != nil {
			return pos, nil, fmt.Errorf("saga: resume: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			pos = ev.Position
			_, id, err := eventstore.ParseStream(ev.Stream)
			if err != nil {
				continue
			}
			if IsEvent(ev.Type) {
				open[id] = !terminal(ev.Type)
			}
		}
	}
	var errs []error
	resumed := 0
	for _, id := range slices.Sorted(maps.Keys(open)) {
		if !open[id] || o.isForeign(id) {
			continue
		}
		_, err := o.drive(ctx, id, func(e *entry) bool {
			if o.sendUnsent(ctx, e) {
				resumed++
			}
			return false
		}, nil)
		if err != nil && !errors.Is(err, errUnknown) {
			errs = append(errs, fmt.Errorf("saga %s: %w", id, err))
		}
	}
	if resumed > 0 {
		o.log.InfoContext(ctx, "sagas resumed", "count", resumed)
	}
	o.notify()
	return pos, errors.Join(errs...), nil
}

// Run resumes unfinished sagas, then follows the saga category (so sagas moved by
// other instances are tracked too) and calls Tick whenever something is due, until
// ctx ends; it then returns nil. Sagas that cannot be loaded are logged and retried
// on every Tick. It returns an error if the category cannot be read or its
// subscription ends.
func (o *Orchestrator[T]) Run(ctx context.Context) error {
	pos, sagaErrs, err := o.resume(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	if sagaErrs != nil {
		// Those sagas stay tracked and are retried on every Tick; one bad saga must
		// not keep the others from running.
		o.log.WarnContext(ctx, "some sagas could not be resumed", "error", sagaErrs)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan error, 1)
	go func() { followed <- o.store.SubscribeCategory(ctx, o.category, pos, o.observe) }()
	for {
		wait := time.Minute
		if next := o.nextWake(); !next.IsZero() {
			wait = max(0, next.Sub(o.clock.Now()))
		}
		t := o.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			<-followed
			return nil
		case err := <-followed:
			t.Stop()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("saga: follow category: %w", err)
		case <-o.wake:
			// A saga changed: its next due time may come sooner than the one
			// waited for. Look again rather than Tick every saga.
			t.Stop()
			continue
		case <-t.C():
		}
		if err := o.Tick(ctx); err != nil && ctx.Err() == nil {
			o.log.WarnContext(ctx, "saga tick failed", "error", err)
		}
	}
}

// Get returns saga id as its log says now. It returns ErrNotFound if there is no
// saga of this definition with that id, ErrDefinitionMismatch for a log the
// definition cannot read, or the store's error.
func (o *Orchestrator[T]) Get(ctx context.Context, id string) (State, error) {
	st, err := o.load(ctx, id)
	if errors.Is(err, errUnknown) {
		return State{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return State{}, err
	}
	return st.export(o.names, o.clock.Now()), nil
}

// Stuck lists the tracked sagas that passed their stuck deadline without ending,
// oldest first. After Resume (or under Run) that is every such saga in the store.
// It returns the joined errors of sagas it could not load, with the others.
func (o *Orchestrator[T]) Stuck(ctx context.Context) ([]State, error) {
	now := o.clock.Now()
	var out []State
	var errs []error
	for _, id := range o.tracked() {
		_, err := o.drive(ctx, id, func(e *entry) bool {
			if !now.Before(e.st.stuckAt) {
				out = append(out, e.st.export(o.names, now))
			}
			return false
		}, nil)
		if err != nil && !errors.Is(err, errUnknown) {
			errs = append(errs, err)
		}
	}
	slices.SortFunc(out, func(a, b State) int { return a.StartedAt.Compare(b.StartedAt) })
	return out, errors.Join(errs...)
}

// drive loads saga id if needed and runs pre on it (once); unless pre returns false,
// it runs decide on a scratch copy and commits what it emitted, and after an
// optimistic-concurrency conflict reloads and decides again. It reports whether
// anything was recorded. It returns errUnknown for a saga that does not exist or is
// not of this definition.
func (o *Orchestrator[T]) drive(ctx context.Context, id string, pre func(*entry) bool, decide func(*batch)) (bool, error) {
	e := o.track(id)
	defer e.mu.Unlock()
	for conflicts := 0; ; conflicts++ {
		if e.st == nil {
			st, err := o.load(ctx, id)
			if err != nil {
				if errors.Is(err, errUnknown) {
					o.untrack(id, e)
				} else {
					e.retryAt = o.clock.Now().Add(o.resend)
				}
				return false, err
			}
			e.st = st
		}
		if e.st.status.Final() {
			o.untrack(id, e)
			return false, nil
		}
		if pre != nil {
			if !pre(e) {
				return false, nil
			}
			pre = nil
		}
		b := &batch{st: e.st.clone(), now: o.clock.Now()}
		decide(b)
		if len(b.evs) == 0 {
			return false, nil
		}
		err := o.commit(ctx, e, b, e.st.version)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && conflicts < 16 {
			continue // another instance moved the saga: commit dropped our copy
		}
		if err != nil {
			return false, err
		}
		if e.st.status.Final() {
			o.untrack(id, e)
		}
		o.notify()
		return true, nil
	}
}

// commit appends b's events with expected version, then adopts b's state and sends
// b's command. Any append error drops the cached state, so the next use reloads.
func (o *Orchestrator[T]) commit(ctx context.Context, e *entry, b *batch, expected eventstore.Version) error {
	if b.err != nil {
		return b.err
	}
	evs := make([]eventstore.Event, len(b.evs))
	for i, m := range b.evs {
		data, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("saga: marshal %s: %w", typeOf(m), err)
		}
		evs[i] = eventstore.Event{
			ID: uuid.NewString(), Type: string(typeOf(m)), Time: b.now, Data: data,
			Metadata: map[string]string{eventstore.MetaCorrelationID: b.st.id},
		}
		if b.cause != "" {
			evs[i].Metadata[eventstore.MetaCausationID] = b.cause
		}
		injectTrace(ctx, evs[i].Metadata)
	}
	v, err := o.store.Append(ctx, o.stream(b.st.id), expected, append(slices.Clip(b.leading), evs...)...)
	if err != nil {
		e.st = nil
		return err
	}
	b.st.version = v
	e.st = b.st
	o.recorded(ctx, b)
	if b.cmd != nil {
		e.unsent = true
		o.send(ctx, e)
	}
	return nil
}

// send sends the command e's saga is waiting on; a failure leaves e.unsent set so
// Tick tries again.
func (o *Orchestrator[T]) send(ctx context.Context, e *entry) {
	cmd, err := o.pending(e.st)
	if err != nil {
		o.log.ErrorContext(ctx, "saga command cannot be rebuilt", "saga_id", e.st.id, "error", err)
		return
	}
	if cmd == nil {
		e.unsent = false
		return
	}
	ctx, span := o.sendSpan(ctx, e.st, cmd)
	defer span.End()
	if err := o.transport.Send(ctx, *cmd); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "send failed")
		e.unsent = true
		o.log.WarnContext(ctx, "saga command not sent, will resend", "saga_id", e.st.id, "command_id", cmd.ID, "error", err)
		return
	}
	e.unsent = false
	e.sentAt = e.st.version
}

// chores are Tick's work besides timers: resend, and report a saga gone stuck.
func (o *Orchestrator[T]) chores(ctx context.Context, e *entry) {
	if e.unsent {
		o.send(ctx, e)
	}
	if !e.stuck && !o.clock.Now().Before(e.st.stuckAt) {
		e.stuck = true
		o.metrics.stuck.Add(ctx, 1, o.metrics.attrs)
		o.log.WarnContext(ctx, "saga stuck", "saga_id", e.st.id, "status", e.st.status.String(),
			"step", o.names[min(e.st.step, len(o.names)-1)], "started_at", e.st.startedAt, "reason", e.st.reason)
	}
}

// recorded counts and logs what a committed batch means.
func (o *Orchestrator[T]) recorded(ctx context.Context, b *batch) {
	for _, ev := range b.evs {
		switch e := ev.(type) {
		case *sagav1.SagaStarted:
			o.metrics.started.Add(ctx, 1, o.metrics.attrs)
		case *sagav1.StepStarted:
			if e.GetAttempt() > 1 {
				o.metrics.step(ctx, o.metrics.retries, e.GetStepName())
			}
		case *sagav1.CompensationStarted:
			if e.GetAttempt() == 1 {
				o.metrics.step(ctx, o.metrics.compensations, e.GetStepName())
			} else {
				o.metrics.step(ctx, o.metrics.retries, e.GetStepName())
			}
		case *sagav1.SagaCompleted, *sagav1.SagaCancelled:
			o.metrics.ended(ctx, b.st.status, b.st.endedAt.Sub(b.st.startedAt))
			o.log.InfoContext(ctx, "saga ended", "saga_id", b.st.id, "status", b.st.status.String(), "reason", b.st.reason)
		}
	}
}

// load reads saga id from the store. It returns errUnknown if the stream does not
// exist or belongs to another definition.
func (o *Orchestrator[T]) load(ctx context.Context, id string) (*state, error) {
	evs, err := o.store.ReadStream(ctx, o.stream(id), 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) || errors.Is(err, eventstore.ErrInvalidStream) {
		return nil, errUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("saga: load %s: %w", id, err)
	}
	st := newState(id, len(o.names))
	started := false
	for _, ev := range evs {
		if !IsEvent(ev.Type) {
			st.version = ev.Version // another writer's event in a shared stream
			continue
		}
		m, err := DecodeEvent(ev)
		if err != nil {
			return nil, err
		}
		if !started {
			start, ok := m.(*sagav1.SagaStarted)
			if !ok {
				return nil, fmt.Errorf("saga: log of %s starts with %s", id, ev.Type)
			}
			if start.GetDefinition() != o.def.Name {
				o.mu.Lock()
				o.foreign[id] = true
				o.mu.Unlock()
				return nil, errUnknown
			}
			st.origin = originOf(ev.Metadata)
			started = true
		}
		if err := st.apply(m, ev.Time, o.names); err != nil {
			return nil, err
		}
		st.version = ev.Version
	}
	if !started {
		return nil, errUnknown // a shared stream whose saga has not started
	}
	return st, nil
}

// observe follows the category: it tracks sagas other instances started and keeps
// the cached state of tracked ones current.
func (o *Orchestrator[T]) observe(ctx context.Context, ev eventstore.Event) error {
	_, id, err := eventstore.ParseStream(ev.Stream)
	if err != nil {
		return nil
	}
	// Another writer's event in a shared stream only moves the version.
	own := IsEvent(ev.Type)
	o.mu.Lock()
	e, foreign := o.sagas[id], o.foreign[id]
	if foreign && terminal(ev.Type) {
		delete(o.foreign, id)
	}
	if foreign || (e == nil && (terminal(ev.Type) || !own)) {
		o.mu.Unlock()
		return nil
	}
	if e == nil {
		o.sagas[id] = &entry{} // loaded on the next Tick
		o.mu.Unlock()
		o.notify()
		return nil
	}
	o.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.gone:
		return nil
	case terminal(ev.Type):
		o.untrack(id, e)
		return nil
	case e.st == nil || ev.Version <= e.st.version:
		return nil // already known, or loaded on next use
	case ev.Version == e.st.version+1:
		st := e.st.clone()
		if own {
			m, err := DecodeEvent(ev)
			if err == nil {
				err = st.apply(m, ev.Time, o.names)
			}
			if err != nil {
				e.st = nil
				return nil
			}
		}
		st.version = ev.Version
		e.st = st
	default:
		e.st = nil
	}
	if own {
		o.notify()
	}
	return nil
}

// nextWake is the earliest instant something is due for a tracked saga, or zero.
func (o *Orchestrator[T]) nextWake() time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	now := o.clock.Now()
	o.mu.Lock()
	entries := slices.Collect(maps.Values(o.sagas))
	o.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		switch {
		case e.gone:
		case e.st == nil && e.retryAt.After(now):
			soonest(e.retryAt)
		case e.st == nil:
			soonest(now)
		default:
			soonest(e.st.due)
			if e.unsent {
				soonest(now.Add(o.resend))
			}
			if !e.stuck {
				soonest(e.st.stuckAt)
			}
		}
		e.mu.Unlock()
	}
	return next
}

// track returns the locked entry of saga id, creating it if needed.
func (o *Orchestrator[T]) track(id string) *entry {
	for {
		o.mu.Lock()
		e := o.sagas[id]
		if e == nil {
			e = &entry{}
			o.sagas[id] = e
		}
		o.mu.Unlock()
		e.mu.Lock()
		if !e.gone {
			return e
		}
		e.mu.Unlock()
	}
}

// forget drops this instance's copy of saga id's state, so its next use reads it.
func (o *Orchestrator[T]) forget(id string) {
	e := o.track(id)
	e.st = nil
	e.mu.Unlock()
}

// untrack forgets saga id; the caller holds e.mu.
func (o *Orchestrator[T]) untrack(id string, e *entry) {
	o.mu.Lock()
	if o.sagas[id] == e {
		delete(o.sagas, id)
	}
	o.mu.Unlock()
	e.gone = true
	if e.stuck {
		o.metrics.stuck.Add(context.Background(), -1, o.metrics.attrs)
	}
}

func (o *Orchestrator[T]) tracked() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(maps.Keys(o.sagas))
}

func (o *Orchestrator[T]) isForeign(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.foreign[id]
}

func (o *Orchestrator[T]) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}
