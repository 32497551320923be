package saga

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Definition describes one kind of saga over data of type T, e.g. an order saga over
// an order snapshot message. The data is stored in the saga's log, passed to every
// command builder and may be updated by success replies.
//
// Changing the steps of a definition while sagas of it are in flight is a trap: their
// logs number steps by position. Loading a log whose step names do not match the
// definition fails with ErrDefinitionMismatch rather than misreading it; add a new
// definition (a new Name) instead, and keep the old one until its sagas have ended.
type Definition[T proto.Message] struct {
	// Name identifies the definition in the log (SagaStarted.definition), e.g. "order".
	Name string
	// Steps run in order; the saga completes when the last one succeeds.
	Steps []Step[T]
	// StuckAfter is how long after its start an unfinished saga is surfaced as stuck
	// (metric, log line, Stuck query). Default 1h.
	StuckAfter time.Duration
}

// Step is one command of a saga and its compensation.
//
// Do and Undo must be pure functions of their arguments: after a crash the command
// in flight is rebuilt from the log and resent with the same id, and the participant
// must see the same command. They must not keep or modify their arguments.
type Step[T proto.Message] struct {
	// Name appears in logs, metrics and command ids, e.g. "authorize_payment".
	Name string
	// Do builds the step's command from the saga's data. An error fails the step
	// (its completed predecessors are compensated) without sending anything.
	Do func(data T) (Request, error)
	// SucceededOn and FailedOn list the reply messages that end the step, by type
	// (samples such as &paymentv1.PaymentAuthorized{}; only their type matters).
	// A failure reply means the step had no effect, so it is not compensated.
	SucceededOn []proto.Message
	FailedOn    []proto.Message
	// OnSuccess, if set, updates data from the success reply (e.g. remember a
	// payment id for a later capture). It may modify data in place; an error fails
	// the step as a failure reply would.
	OnSuccess func(data T, reply proto.Message) error
	// Timeout bounds one attempt: no reply by then and the attempt timed out.
	// Default 30s.
	Timeout time.Duration
	// Retry says how often a timed-out step is tried again before the saga
	// compensates. Each attempt is a new command id, so a participant must make the
	// step's effect idempotent by business key (e.g. one authorization per order).
	Retry Retry

	// Undo, if set, builds the compensation from the data and the step's success
	// reply. reply is nil when the step timed out for good: its effect may have
	// happened unseen, so it is compensated too and Undo must cope with "nothing to
	// undo" (and the participant must refuse a late original command afterwards).
	// Steps without Undo are skipped when compensating.
	Undo func(data T, reply proto.Message) (Request, error)
	// UndoneOn lists the replies confirming the compensation (required with Undo);
	// UndoFailedOn the replies that make the attempt fail and be retried.
	UndoneOn     []proto.Message
	UndoFailedOn []proto.Message
	// UndoTimeout bounds one compensation attempt. Default Timeout.
	UndoTimeout time.Duration
	// UndoBackoff spaces compensation attempts, which go on until one succeeds.
	// Default Retry.Backoff.
	UndoBackoff Backoff
}

// Request is a command to send: NATS subject (cmd.<service>.<verb>) and payload.
type Request struct {
	Subject string
	Msg     proto.Message
}

// Retry is the retry policy of a step after a timeout.
type Retry struct {
	// Attempts is the total number of tries, the first included. Default 1.
	Attempts int
	// Backoff spaces the attempts.
	Backoff Backoff
}

// Backoff is an exponential delay: Initial after the first failed attempt, doubling
// up to Max. It has no jitter, so that timings and ids stay reproducible; sagas of
// one definition start at different times, which spreads their retries already.
type Backoff struct {
	Initial time.Duration // default 1s
	Max     time.Duration // default 1m
}

// delay returns the wait after the n-th failed attempt (n >= 1).
func (b Backoff) delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

func (b Backoff) withDefaults(def Backoff) Backoff {
	if b.Initial <= 0 {
		b.Initial = def.Initial
	}
	if b.Max <= 0 {
		b.Max = max(def.Max, b.Initial)
	}
	return b
}

var defaultBackoff = Backoff{Initial: time.Second, Max: time.Minute}

// ErrInvalidDefinition is returned (wrapped, joining every problem) by New for a
// definition that cannot run.
var ErrInvalidDefinition = errors.New("saga: invalid definition")

// withDefaults returns a copy of d with zero values replaced by defaults.
func (d Definition[T]) withDefaults() Definition[T] {
	if d.StuckAfter <= 0 {
		d.StuckAfter = time.Hour
	}
	steps := make([]Step[T], len(d.Steps))
	for i, s := range d.Steps {
		if s.Timeout <= 0 {
			s.Timeout = 30 * time.Second
		}
		if s.Retry.Attempts <= 0 {
			s.Retry.Attempts = 1
		}
		s.Retry.Backoff = s.Retry.Backoff.withDefaults(defaultBackoff)
		if s.UndoTimeout <= 0 {
			s.UndoTimeout = s.Timeout
		}
		s.UndoBackoff = s.UndoBackoff.withDefaults(s.Retry.Backoff)
		steps[i] = s
	}
	d.Steps = steps
	return d
}

// Validate returns ErrInvalidDefinition joined with every problem of d.
func (d Definition[T]) Validate() error {
	var errs []error
	if d.Name == "" {
		errs = append(errs, errors.New("a name is required"))
	}
	if len(d.Steps) == 0 {
		errs = append(errs, errors.New("at least one step is required"))
	}
	names := map[string]bool{}
	for i, s := range d.Steps {
		at := fmt.Sprintf("step %d (%s)", i, s.Name)
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("step %d needs a name", i))
		} else if names[s.Name] {
			errs = append(errs, fmt.Errorf("%s: name repeated", at))
		}
		names[s.Name] = true
		if s.Do == nil {
			errs = append(errs, fmt.Errorf("%s: Do is required", at))
		}
		if len(s.SucceededOn) == 0 {
			errs = append(errs, fmt.Errorf("%s: SucceededOn needs at least one reply type", at))
		}
		if err := disjoint(s.SucceededOn, s.FailedOn); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
		}
		if s.Undo != nil && len(s.UndoneOn) == 0 {
			errs = append(errs, fmt.Errorf("%s: Undo needs UndoneOn", at))
		}
		if s.Undo == nil && (len(s.UndoneOn) > 0 || len(s.UndoFailedOn) > 0) {
			errs = append(errs, fmt.Errorf("%s: UndoneOn or UndoFailedOn without Undo", at))
		}
		if err := disjoint(s.UndoneOn, s.UndoFailedOn); err != nil {
			errs = append(errs, fmt.Errorf("%s: compensation %w", at, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %q: %w", ErrInvalidDefinition, d.Name, errors.Join(errs...))
}

func disjoint(ok, failed []proto.Message) error {
	seen := map[protoreflect.FullName]bool{}
	for _, m := range ok {
		if m == nil {
			return errors.New("nil reply sample")
		}
		seen[typeOf(m)] = true
	}
	for _, m := range failed {
		if m == nil {
			return errors.New("nil reply sample")
		}
		if seen[typeOf(m)] {
			return fmt.Errorf("reply %s means both success and failure", typeOf(m))
		}
	}
	return nil
}

func typeOf(m proto.Message) protoreflect.FullName { return m.ProtoReflect().Descriptor().FullName() }

// lookup returns the sample of samples whose type is name, or nil.
func lookup(samples []proto.Message, name protoreflect.FullName) proto.Message {
	for _, s := range samples {
		if typeOf(s) == name {
			return s
		}
	}
	return nil
}
