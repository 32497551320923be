package saga

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
)

// Status is where a saga stands.
type Status int

const (
	// Running: steps are being executed.
	Running Status = iota + 1
	// Compensating: a step failed or timed out; completed steps are being undone.
	Compensating
	// Completed: every step succeeded. Final.
	Completed
	// Cancelled: the saga failed and every compensation succeeded. Final.
	Cancelled
)

func (s Status) String() string {
	switch s {
	case Running:
		return "RUNNING"
	case Compensating:
		return "COMPENSATING"
	case Completed:
		return "COMPLETED"
	case Cancelled:
		return "CANCELLED"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Final reports whether s is Completed or Cancelled.
func (s Status) Final() bool { return s == Completed || s == Cancelled }

// State is a saga as its log tells it, for queries.
type State struct {
	ID         string
	Definition string
	Status     Status
	// Step is the step in progress while Running, the step that failed or timed
	// out once Compensating or Cancelled, and len(steps) once Completed.
	Step     int
	StepName string
	// Compensating is the step whose compensation is in progress (-1 if none).
	Compensating int
	// Attempts and UndoAttempts count the tries of each step and compensation.
	Attempts     []int
	UndoAttempts []int
	// Reason says why a saga is compensating or was cancelled.
	Reason    string
	StartedAt time.Time
	EndedAt   time.Time
	// StuckAt is when an unfinished saga counts as stuck; Stuck says if it is.
	StuckAt time.Time
	Stuck   bool
	// Version is the version of the saga's stream.
	Version eventstore.Version
	// History is the whole log, oldest first.
	History []HistoryEvent
}

// HistoryEvent is one event of a saga's log.
type HistoryEvent struct {
	Version eventstore.Version
	Time    time.Time
	// Event is one of the eventshop.saga.v1 messages.
	Event proto.Message
}

// state is the fold of a saga's log. Transitions happen only in apply.
type state struct {
	id         string
	definition string
	version    eventstore.Version
	status     Status
	data       []byte
	startedAt  time.Time
	endedAt    time.Time
	stuckAt    time.Time
	step       int // step in progress, or the failed one once compensating
	comp       int // step being compensated, -1 if none
	attempts   []int
	undos      []int
	done       []bool   // step succeeded
	undone     []bool   // step compensated
	replies    []*reply // success reply per step
	// timedOut is the step whose effect is uncertain, -1 if none: it timed out for
	// good, or failed after an attempt that timed out (that attempt may still be
	// carried out). Compensation includes it; its participant answers "nothing to
	// undo" when nothing was done and refuses the late attempt afterwards.
	timedOut int
	waiting  bool // a command is out and due is its timeout; else due is a retry time
	due      time.Time
	ids      map[string]bool // command ids of the step or compensation in progress
	lastID   string          // id of the latest attempt in progress
	reason   string
	history  []HistoryEvent
	origin   trace.SpanContext // trace the saga was started in (see tracing.go)
}

type reply struct {
	typ  string
	data []byte
}

func newState(id string, steps int) *state {
	return &state{
		id: id, comp: -1, timedOut: -1,
		attempts: make([]int, steps), undos: make([]int, steps),
		done: make([]bool, steps), undone: make([]bool, steps), replies: make([]*reply, steps),
		ids: map[string]bool{},
	}
}

func (s *state) clone() *state {
	c := *s
	c.attempts = slices.Clone(s.attempts)
	c.undos = slices.Clone(s.undos)
	c.done = slices.Clone(s.done)
	c.undone = slices.Clone(s.undone)
	c.replies = slices.Clone(s.replies)
	c.ids = maps.Clone(s.ids)
	c.history = slices.Clip(s.history)
	return &c
}

// apply folds one event into s. names are the definition's step names: a log that
// disagrees with them returns ErrDefinitionMismatch.
func (s *state) apply(ev proto.Message, at time.Time, names []string) error {
	checkStep := func(step int32, name string) error {
		if int(step) < 0 || int(step) >= len(names) || names[step] != name {
			return fmt.Errorf("%w: saga %s step %d is %q in the log", ErrDefinitionMismatch, s.id, step, name)
		}
		return nil
	}
	s.version++
	s.history = append(s.history, HistoryEvent{Version: s.version, Time: at, Event: ev})
	switch e := ev.(type) {
	case *sagav1.SagaStarted:
		s.definition = e.GetDefinition()
		s.status = Running
		s.data = e.GetData()
		s.startedAt = at
		s.stuckAt = e.GetStuckTime().AsTime()
	case *sagav1.StepStarted:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.begin(int(e.GetStep()), -1, e.GetCommandId())
		s.attempts[s.step] = int(e.GetAttempt())
		s.due = e.GetTimeoutTime().AsTime()
	case *sagav1.StepSucceeded:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.done[e.GetStep()] = true
		s.replies[e.GetStep()] = &reply{typ: e.GetReplyType(), data: e.GetReply()}
		if len(e.GetData()) > 0 {
			s.data = e.GetData()
		}
		s.idle()
	case *sagav1.StepFailed:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.status = Compensating
		s.step = int(e.GetStep())
		s.reason = e.GetReason()
		if s.attempts[s.step] > 1 {
			// An earlier attempt timed out and may yet be carried out.
			s.timedOut = s.step
		}
		s.idle()
	case *sagav1.StepTimedOut:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.waiting = false
		if e.GetRetryTime() != nil {
			// Replies to earlier attempts still count, so the ids are kept.
			s.due = e.GetRetryTime().AsTime()
			break
		}
		s.status = Compensating
		s.timedOut = int(e.GetStep())
		s.reason = fmt.Sprintf("step %s timed out after %d attempts", e.GetStepName(), e.GetAttempt())
		s.idle()
	case *sagav1.CompensationStarted:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.begin(s.step, int(e.GetStep()), e.GetCommandId())
		s.undos[s.comp] = int(e.GetAttempt())
		s.due = e.GetTimeoutTime().AsTime()
	case *sagav1.CompensationFailed:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.waiting = false
		s.due = e.GetRetryTime().AsTime()
	case *sagav1.CompensationSucceeded:
		if err := checkStep(e.GetStep(), e.GetStepName()); err != nil {
			return err
		}
		s.undone[e.GetStep()] = true
		s.idle()
		s.comp = -1
	case *sagav1.SagaCompleted:
		s.status = Completed
		s.step = len(names)
		s.endedAt = at
		s.idle()
	case *sagav1.SagaCancelled:
		s.status = Cancelled
		s.reason = e.GetReason()
		s.endedAt = at
		s.idle()
	default:
		return fmt.Errorf("saga: unknown event %T in saga %s", ev, s.id)
	}
	return nil
}

// begin starts (or continues, with another attempt) the step or compensation comp.
func (s *state) begin(step, comp int, id string) {
	if step != s.step || comp != s.comp {
		clear(s.ids)
	}
	s.step, s.comp = step, comp
	s.ids[id] = true
	s.lastID = id
	s.waiting = true
}

// idle ends whatever was in progress: later replies to it are ignored.
func (s *state) idle() {
	clear(s.ids)
	s.lastID = ""
	s.waiting = false
	s.due = time.Time{}
}

// export copies s into a State for queries.
func (s *state) export(names []string, now time.Time) State {
	st := State{
		ID: s.id, Definition: s.definition, Status: s.status, Step: s.step,
		Compensating: s.comp,
		Attempts:     slices.Clone(s.attempts), UndoAttempts: slices.Clone(s.undos),
		Reason: s.reason, StartedAt: s.startedAt, EndedAt: s.endedAt, StuckAt: s.stuckAt,
		Stuck:   !s.status.Final() && !now.Before(s.stuckAt),
		Version: s.version, History: slices.Clone(s.history),
	}
	if s.step < len(names) {
		st.StepName = names[s.step]
	}
	return st
}

// events maps the event type names of the log to their messages.
var events = map[string]func() proto.Message{}

func init() {
	for _, m := range []proto.Message{
		&sagav1.SagaStarted{}, &sagav1.StepStarted{}, &sagav1.StepSucceeded{},
		&sagav1.StepFailed{}, &sagav1.StepTimedOut{}, &sagav1.CompensationStarted{},
		&sagav1.CompensationFailed{}, &sagav1.CompensationSucceeded{},
		&sagav1.SagaCompleted{}, &sagav1.SagaCancelled{},
	} {
		t := m.ProtoReflect().Type()
		events[string(typeOf(m))] = func() proto.Message { return t.New().Interface() }
	}
}

// DecodeEvent returns the saga log event stored in e, for readers of a stream the
// saga shares (WithCategory). It returns an error for a type that is not a saga
// event (see IsEvent) or a payload that does not unmarshal.
func DecodeEvent(e eventstore.Event) (proto.Message, error) {
	newMsg, ok := events[e.Type]
	if !ok {
		return nil, fmt.Errorf("saga: unknown event type %q at %s v%d", e.Type, e.Stream, e.Version)
	}
	m := newMsg()
	if err := proto.Unmarshal(e.Data, m); err != nil {
		return nil, fmt.Errorf("saga: decode %s at %s v%d: %w", e.Type, e.Stream, e.Version, err)
	}
	return m, nil
}

// IsEvent reports whether eventType (an eventstore.Event's Type) is one of the saga
// log's own events, as opposed to another writer's in a shared stream.
func IsEvent(eventType string) bool {
	_, ok := events[eventType]
	return ok
}

func terminal(eventType string) bool {
	return eventType == string(typeOf(&sagav1.SagaCompleted{})) || eventType == string(typeOf(&sagav1.SagaCancelled{}))
}
