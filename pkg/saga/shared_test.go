package saga_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
)

// foreign is an event of the aggregate that shares the saga's stream.
func foreign(id string) eventstore.Event {
	return eventstore.Event{ID: id, Type: "test.v1.OrderNote", Data: []byte(id)}
}

// A saga kept in its aggregate's stream (WithCategory) starts in the same append as
// the aggregate's first event, ignores the aggregate's own events, however they
// interleave with its transitions, and resumes from that stream.
func TestSagaInASharedStream(t *testing.T) {
	h := newHarness(t, testDefinition(3, 1), saga.WithCategory("order"))
	v, err := h.o.StartWith(h.ctx, "s1", newData("s1"), eventstore.NoStream, foreign("placed"))
	if err != nil {
		t.Fatal(err)
	}
	if v != 3 {
		t.Fatalf("StartWith returned version %d, want 3 (the leading event, SagaStarted, StepStarted)", v)
	}
	evs, err := h.store.ReadStream(h.ctx, "order-s1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Type != "test.v1.OrderNote" || evs[1].Type != "eventshop.saga.v1.SagaStarted" {
		t.Fatalf("first commit %v, want the leading event, SagaStarted and StepStarted", types(evs))
	}
	if _, err := h.store.ReadStream(h.ctx, saga.StreamName("s1"), 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("saga category stream: %v, want none", err)
	}

	for i := range 3 {
		c := h.one()
		// Another writer appends to the shared stream between every two transitions.
		if _, err := h.store.Append(h.ctx, "order-s1", eventstore.Any, foreign(fmt.Sprint("note-", i))); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// A fresh instance finds the open saga among the aggregate's events and
			// resends what it waits for.
			h.o = h.orchestrator(saga.WithCategory("order"))
			if err := h.o.Resume(h.ctx); err != nil {
				t.Fatal(err)
			}
			if again := h.one(); again.ID != c.ID {
				t.Fatalf("resumed with %s, want %s", again.ID, c.ID)
			}
		}
		h.ok(c, int64(i))
	}
	h.none()
	st := h.state("s1")
	if st.Status != saga.Completed {
		t.Fatalf("status %v, want COMPLETED", st.Status)
	}
	if n := len(eventNames(st)); n != 8 {
		t.Fatalf("saga history %v: want only the saga's 8 events", eventNames(st))
	}

	// The saga exists: a second start says so; a stream the aggregate holds alone
	// is a conflict, not a started saga.
	if _, err := h.o.StartWith(h.ctx, "s1", newData("s1"), eventstore.NoStream, foreign("placed-again")); !errors.Is(err, saga.ErrAlreadyStarted) {
		t.Fatalf("second StartWith = %v, want ErrAlreadyStarted", err)
	}
	if _, err := h.store.Append(h.ctx, "order-s2", eventstore.NoStream, foreign("other")); err != nil {
		t.Fatal(err)
	}
	_, err = h.o.StartWith(h.ctx, "s2", newData("s2"), eventstore.NoStream, foreign("placed-s2"))
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || errors.Is(err, saga.ErrAlreadyStarted) {
		t.Fatalf("StartWith on a stream without a saga = %v, want a version conflict", err)
	}
	if _, err := h.o.Get(h.ctx, "s2"); !errors.Is(err, saga.ErrNotFound) {
		t.Fatalf("Get of a stream without a saga = %v, want ErrNotFound", err)
	}
}

func types(evs []eventstore.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return slices.Clip(out)
}
