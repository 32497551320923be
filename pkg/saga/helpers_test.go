package saga_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/saga/sagatest"
)

// The test saga runs over a structpb.Struct holding "id" and, after each step, the
// value its success reply carried. Messages are well-known wrappers, one per role:
//
//	command            StringValue  "<step>:<id>"     on cmd.test.<step>
//	success reply      Int64Value   a resource number
//	failure reply      BoolValue
//	compensation       BytesValue   "undo:<step>:<resource or none>" on cmd.test.<step>.undo
//	compensated        UInt64Value
//	compensation fail  UInt32Value
type data = *structpb.Struct

var (
	quiet    = slog.New(slog.DiscardHandler)
	epoch    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	errCrash = errors.New("instance crashed")
)

const (
	stepTimeout = 10 * time.Second
	undoTimeout = 5 * time.Second
)

func testStep(name string, attempts int) saga.Step[data] {
	return saga.Step[data]{
		Name: name,
		Do: func(d data) (saga.Request, error) {
			return saga.Request{Subject: "cmd.test." + name, Msg: wrapperspb.String(name + ":" + d.GetFields()["id"].GetStringValue())}, nil
		},
		SucceededOn: []proto.Message{&wrapperspb.Int64Value{}},
		FailedOn:    []proto.Message{&wrapperspb.BoolValue{}},
		OnSuccess: func(d data, reply proto.Message) error {
			d.Fields[name] = structpb.NewNumberValue(float64(reply.(*wrapperspb.Int64Value).GetValue()))
			return nil
		},
		Timeout: stepTimeout,
		Retry:   saga.Retry{Attempts: attempts, Backoff: saga.Backoff{Initial: time.Second, Max: 4 * time.Second}},
		Undo: func(d data, reply proto.Message) (saga.Request, error) {
			what := "none"
			if reply != nil {
				what = fmt.Sprint(reply.(*wrapperspb.Int64Value).GetValue())
			}
			return saga.Request{Subject: "cmd.test." + name + ".undo", Msg: wrapperspb.Bytes([]byte("undo:" + name + ":" + what))}, nil
		},
		UndoneOn:     []proto.Message{&wrapperspb.UInt64Value{}},
		UndoFailedOn: []proto.Message{&wrapperspb.UInt32Value{}},
		UndoTimeout:  undoTimeout,
		UndoBackoff:  saga.Backoff{Initial: 2 * time.Second, Max: 8 * time.Second},
	}
}

func testDefinition(steps, attempts int) saga.Definition[data] {
	def := saga.Definition[data]{Name: "test", StuckAfter: time.Hour}
	for i := range steps {
		def.Steps = append(def.Steps, testStep(string(rune('a'+i)), attempts))
	}
	return def
}

func newData(id string) data {
	return &structpb.Struct{Fields: map[string]*structpb.Value{"id": structpb.NewStringValue(id)}}
}

// harness is one orchestrator over an in-memory store, with a fake clock and a
// recording transport; the test plays the participants.
type harness struct {
	t     *testing.T
	ctx   context.Context
	store *eventstore.Memory
	clock *sagatest.Clock
	tr    *sagatest.Transport
	o     *saga.Orchestrator[data]
	def   saga.Definition[data]
}

func newHarness(t *testing.T, def saga.Definition[data], opts ...saga.Option) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), store: eventstore.NewMemory(), clock: sagatest.NewClock(epoch), tr: &sagatest.Transport{}, def: def}
	h.o = h.orchestrator(opts...)
	return h
}

// orchestrator returns a new instance on the harness's store, clock and transport.
func (h *harness) orchestrator(opts ...saga.Option) *saga.Orchestrator[data] {
	h.t.Helper()
	o, err := saga.New(h.def, h.store, h.tr, append([]saga.Option{saga.WithClock(h.clock), saga.WithLogger(quiet)}, opts...)...)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	return o
}

func (h *harness) start(id string) {
	h.t.Helper()
	if err := h.o.Start(h.ctx, id, newData(id)); err != nil {
		h.t.Fatalf("Start %s: %v", id, err)
	}
}

// one takes the commands sent since the last call and requires exactly one.
func (h *harness) one() saga.Command {
	h.t.Helper()
	got := h.tr.Take()
	if len(got) != 1 {
		h.t.Fatalf("want one command sent, got %d: %v", len(got), ids(got))
	}
	return got[0]
}

// none requires that no command was sent since the last take.
func (h *harness) none() {
	h.t.Helper()
	if got := h.tr.Take(); len(got) != 0 {
		h.t.Fatalf("want no command sent, got %v", ids(got))
	}
}

func (h *harness) reply(c saga.Command, msg proto.Message) {
	h.t.Helper()
	if err := h.o.HandleReply(h.ctx, saga.Reply{SagaID: c.SagaID, ID: c.ID + "/reply", CausationID: c.ID, Msg: msg}); err != nil {
		h.t.Fatalf("HandleReply: %v", err)
	}
}

func (h *harness) ok(c saga.Command, v int64) { h.reply(c, wrapperspb.Int64(v)) }
func (h *harness) undone(c saga.Command)      { h.reply(c, wrapperspb.UInt64(1)) }

func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	if err := h.o.Tick(h.ctx); err != nil {
		h.t.Fatalf("Tick: %v", err)
	}
}

func (h *harness) state(id string) saga.State {
	h.t.Helper()
	st, err := h.o.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Get %s: %v", id, err)
	}
	return st
}

func ids(cs []saga.Command) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// eventNames lists the short type names of a saga's history.
func eventNames(st saga.State) []string {
	out := make([]string, len(st.History))
	for i, e := range st.History {
		out[i] = string(e.Event.ProtoReflect().Descriptor().Name())
	}
	return out
}

func wantCommand(t *testing.T, c saga.Command, step string, undo bool, attempt int) {
	t.Helper()
	if c.Step != step || c.Compensation != undo || c.Attempt != attempt {
		t.Fatalf("command %s: want step %s undo=%v attempt %d, got step %s undo=%v attempt %d", c.ID, step, undo, attempt, c.Step, c.Compensation, c.Attempt)
	}
}

// logged reports whether saga id's log holds a Step/CompensationStarted for command id.
func logged(ctx context.Context, store eventstore.Store, sagaID, commandID string) (bool, error) {
	evs, err := store.ReadStream(ctx, saga.StreamName(sagaID), 0)
	if err != nil {
		return false, err
	}
	for _, e := range evs {
		switch e.Type {
		case "eventshop.saga.v1.StepStarted":
			var m sagav1.StepStarted
			if err := proto.Unmarshal(e.Data, &m); err != nil {
				return false, err
			}
			if m.GetCommandId() == commandID {
				return true, nil
			}
		case "eventshop.saga.v1.CompensationStarted":
			var m sagav1.CompensationStarted
			if err := proto.Unmarshal(e.Data, &m); err != nil {
				return false, err
			}
			if m.GetCommandId() == commandID {
				return true, nil
			}
		}
	}
	return false, nil
}
