package saga_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/saga/sagatest"
)

func TestHappyPath(t *testing.T) {
	h := newHarness(t, testDefinition(4, 1))
	h.start("s1")
	for i, name := range []string{"a", "b", "c", "d"} {
		c := h.one()
		wantCommand(t, c, name, false, 1)
		if want := "s1/" + fmt.Sprint(i) + "/1"; c.ID != want {
			t.Fatalf("command id %q, want %q", c.ID, want)
		}
		if got := c.Msg.(*wrapperspb.StringValue).GetValue(); got != name+":s1" {
			t.Fatalf("command payload %q", got)
		}
		h.ok(c, int64(10+i))
	}
	h.none()
	st := h.state("s1")
	if st.Status != saga.Completed || st.Reason != "" || !slices.Equal(st.Attempts, []int{1, 1, 1, 1}) {
		t.Fatalf("state %+v", st)
	}
	want := []string{"SagaStarted", "StepStarted", "StepSucceeded", "StepStarted", "StepSucceeded",
		"StepStarted", "StepSucceeded", "StepStarted", "StepSucceeded", "SagaCompleted"}
	if got := eventNames(st); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	// Each success reply updated the data, and the last StepSucceeded carries it all.
	last := st.History[len(st.History)-2].Event.(interface{ GetData() []byte }).GetData()
	var d structpb.Struct
	if err := proto.Unmarshal(last, &d); err != nil {
		t.Fatal(err)
	}
	if d.Fields["a"].GetNumberValue() != 10 || d.Fields["d"].GetNumberValue() != 13 {
		t.Fatalf("data after the last step: %v", d.AsMap())
	}
}

func TestFailureAtEachStepCompensatesCompletedStepsInReverse(t *testing.T) {
	for failAt := range 4 {
		t.Run(fmt.Sprintf("step %d", failAt), func(t *testing.T) {
			h := newHarness(t, testDefinition(4, 1))
			h.start("s1")
			for i := range failAt {
				h.ok(h.one(), int64(100+i))
			}
			h.reply(h.one(), wrapperspb.Bool(false))
			for i := failAt - 1; i >= 0; i-- {
				c := h.one()
				wantCommand(t, c, string(rune('a'+i)), true, 1)
				if want := fmt.Sprintf("undo:%c:%d", 'a'+i, 100+i); string(c.Msg.(*wrapperspb.BytesValue).GetValue()) != want {
					t.Fatalf("compensation payload %q, want %q", c.Msg.(*wrapperspb.BytesValue).GetValue(), want)
				}
				if want := fmt.Sprintf("s1/%d/undo/1", i); c.ID != want {
					t.Fatalf("compensation id %q, want %q", c.ID, want)
				}
				h.undone(c)
			}
			h.none()
			st := h.state("s1")
			if st.Status != saga.Cancelled || !strings.Contains(st.Reason, string(rune('a'+failAt))) || st.Step != failAt {
				t.Fatalf("state: status %v step %d reason %q", st.Status, st.Step, st.Reason)
			}
		})
	}
}

func TestTimeoutThenRetryThenSuccess(t *testing.T) {
	h := newHarness(t, testDefinition(2, 3))
	h.start("s1")
	first := h.one()
	h.advance(stepTimeout - time.Millisecond)
	h.none()
	h.advance(time.Millisecond) // timed out: backoff of 1s before attempt 2
	h.none()
	h.advance(time.Second)
	second := h.one()
	wantCommand(t, second, "a", false, 2)
	if second.ID == first.ID {
		t.Fatalf("attempt 2 reuses id %s", first.ID)
	}
	h.ok(second, 1)
	wantCommand(t, h.one(), "b", false, 1)
	if st := h.state("s1"); !slices.Equal(st.Attempts, []int{2, 1}) {
		t.Fatalf("attempts %v", st.Attempts)
	}
}

func TestTimeoutAfterRetriesCompensates(t *testing.T) {
	h := newHarness(t, testDefinition(3, 2))
	h.start("s1")
	h.ok(h.one(), 7)
	h.one() // b, attempt 1: no reply
	h.advance(stepTimeout)
	h.advance(time.Second)
	wantCommand(t, h.one(), "b", false, 2)
	h.advance(stepTimeout)
	// b timed out for good: its effect may have happened, so it is compensated
	// first (with no reply to go by), then a.
	c := h.one()
	wantCommand(t, c, "b", true, 1)
	if got := string(c.Msg.(*wrapperspb.BytesValue).GetValue()); got != "undo:b:none" {
		t.Fatalf("compensation of a timed-out step: %q", got)
	}
	h.undone(c)
	c = h.one()
	wantCommand(t, c, "a", true, 1)
	h.undone(c)
	st := h.state("s1")
	if st.Status != saga.Cancelled || !strings.Contains(st.Reason, "timed out after 2 attempts") {
		t.Fatalf("status %v reason %q", st.Status, st.Reason)
	}
}

// A step whose first attempt timed out and whose retry then failed is compensated
// too: the first attempt may still be carried out (a participant restarted with the
// command unacknowledged does it later), and only its compensation, sent now, makes
// the participant undo it or refuse it when it comes.
func TestFailureAfterATimedOutAttemptCompensatesTheStep(t *testing.T) {
	h := newHarness(t, testDefinition(3, 3))
	h.start("s1")
	h.ok(h.one(), 7)
	h.one() // b, attempt 1: no reply
	h.advance(stepTimeout)
	h.advance(time.Second)
	second := h.one()
	wantCommand(t, second, "b", false, 2)
	h.reply(second, wrapperspb.Bool(false)) // attempt 2 fails
	c := h.one()
	wantCommand(t, c, "b", true, 1)
	if got := string(c.Msg.(*wrapperspb.BytesValue).GetValue()); got != "undo:b:none" {
		t.Fatalf("compensation of a step whose timed-out attempt may land: %q", got)
	}
	h.undone(c)
	c = h.one()
	wantCommand(t, c, "a", true, 1)
	h.undone(c)
	if st := h.state("s1"); st.Status != saga.Cancelled {
		t.Fatalf("status %v", st.Status)
	}

	// A step that failed at its first attempt did nothing: it is not compensated.
	h2 := newHarness(t, testDefinition(3, 3))
	h2.start("s2")
	h2.ok(h2.one(), 7)
	h2.reply(h2.one(), wrapperspb.Bool(false))
	c = h2.one()
	wantCommand(t, c, "a", true, 1)
}

func TestCompensationRetriedUntilItSucceeds(t *testing.T) {
	h := newHarness(t, testDefinition(2, 1))
	h.start("s1")
	h.ok(h.one(), 1)
	h.reply(h.one(), wrapperspb.Bool(false))
	seen := map[string]bool{}
	for attempt := 1; attempt <= 4; attempt++ {
		c := h.one()
		wantCommand(t, c, "a", true, attempt)
		if seen[c.ID] {
			t.Fatalf("compensation id %s reused", c.ID)
		}
		seen[c.ID] = true
		if attempt == 3 {
			h.advance(undoTimeout) // no reply this time
		} else {
			h.reply(c, wrapperspb.UInt32(1))
			h.none()
		}
		// Backoff 2s, 4s, 8s, 8s: nothing is sent before it has passed.
		wait := min(2*time.Second<<(attempt-1), 8*time.Second)
		h.advance(wait - time.Millisecond)
		h.none()
		h.advance(time.Millisecond)
	}
	h.undone(h.one())
	st := h.state("s1")
	if st.Status != saga.Cancelled || st.UndoAttempts[0] != 5 {
		t.Fatalf("status %v undo attempts %v", st.Status, st.UndoAttempts)
	}
}

func TestDuplicateRepliesAreIgnored(t *testing.T) {
	h := newHarness(t, testDefinition(3, 1))
	h.start("s1")
	a := h.one()
	h.ok(a, 1)
	b := h.one()
	h.ok(a, 1) // duplicate of a's reply
	h.ok(a, 2) // and another one, even with other content
	h.none()
	h.ok(b, 2)
	h.ok(b, 2)
	c := h.one()
	wantCommand(t, c, "c", false, 1)
	h.reply(c, wrapperspb.Bool(false))
	h.reply(c, wrapperspb.Bool(false))
	u := h.one()
	wantCommand(t, u, "b", true, 1)
	h.undone(u)
	h.undone(u)
	wantCommand(t, h.one(), "a", true, 1)
	h.none()
	if st := h.state("s1"); st.Status != saga.Compensating || !slices.Equal(st.UndoAttempts, []int{1, 1, 0}) {
		t.Fatalf("status %v undo attempts %v", st.Status, st.UndoAttempts)
	}
}

func TestLateReplyForFinishedStepIsIgnored(t *testing.T) {
	h := newHarness(t, testDefinition(2, 2))
	h.start("s1")
	first := h.one()
	h.advance(stepTimeout)
	h.advance(time.Second)
	second := h.one()
	h.ok(second, 2)
	b := h.one()
	version := h.state("s1").Version
	h.ok(first, 1) // attempt 1 answers at last: step a is finished
	h.reply(first, wrapperspb.Bool(false))
	h.none()
	if st := h.state("s1"); st.Version != version || st.Status != saga.Running || st.Step != 1 {
		t.Fatalf("late reply changed the saga: %+v", st)
	}
	h.ok(b, 3)
	end := h.state("s1").Version
	h.ok(b, 3)
	h.ok(first, 1)
	h.none()
	if v := h.state("s1").Version; v != end {
		t.Fatalf("reply after the end appended: version %d -> %d", end, v)
	}
}

func TestReplyForUnknownSagaIsIgnored(t *testing.T) {
	h := newHarness(t, testDefinition(2, 1))
	for _, r := range []saga.Reply{
		{SagaID: "nope", ID: "r1", CausationID: "nope/0/1", Msg: wrapperspb.Int64(1)},
		{SagaID: "bad.id", ID: "r2", Msg: wrapperspb.Int64(1)},
		{SagaID: "", ID: "r3", Msg: wrapperspb.Int64(1)},
	} {
		if err := h.o.HandleReply(h.ctx, r); err != nil {
			t.Fatalf("HandleReply %+v: %v", r, err)
		}
	}
	h.none()
	if evs, _ := h.store.ReadCategory(h.ctx, saga.Category, 0, 0); len(evs) != 0 {
		t.Fatalf("unknown replies wrote %d events", len(evs))
	}
	if _, err := h.o.Get(h.ctx, "nope"); !errors.Is(err, saga.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
}

// A reply that names no command it answers is ignored, however well it fits the step
// in progress (the right type, the saga's id): that is what a forger could send.
// Nothing is appended, and the real answer still moves the saga.
func TestReplyWithoutCausationIsIgnored(t *testing.T) {
	h := newHarness(t, testDefinition(2, 1))
	h.start("s1")
	c := h.one()
	version := h.state("s1").Version
	for _, msg := range []proto.Message{wrapperspb.UInt64(1), wrapperspb.Int64(5)} {
		if err := h.o.HandleReply(h.ctx, saga.Reply{SagaID: "s1", ID: "forged", Msg: msg}); err != nil {
			t.Fatal(err)
		}
	}
	h.none()
	if st := h.state("s1"); st.Version != version || st.Step != 0 || st.Status != saga.Running {
		t.Fatalf("an uncaused reply moved the saga: %+v (version was %d)", st, version)
	}
	h.ok(c, 5)
	wantCommand(t, h.one(), "b", false, 1)
}

func TestStartTwice(t *testing.T) {
	h := newHarness(t, testDefinition(1, 1))
	h.start("s1")
	if err := h.o.Start(h.ctx, "s1", newData("s1")); !errors.Is(err, saga.ErrAlreadyStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := h.o.Start(h.ctx, "a.b", newData("x")); !errors.Is(err, saga.ErrInvalidID) {
		t.Fatalf("Start with a bad id: %v", err)
	}
	h.one()
	h.none()
}

func TestStepWithoutUndoIsSkipped(t *testing.T) {
	def := testDefinition(3, 1)
	def.Steps[1].Undo, def.Steps[1].UndoneOn, def.Steps[1].UndoFailedOn = nil, nil, nil
	h := newHarness(t, def)
	h.start("s1")
	h.ok(h.one(), 1)
	h.ok(h.one(), 2)
	h.reply(h.one(), wrapperspb.Bool(false))
	c := h.one()
	wantCommand(t, c, "a", true, 1)
	h.undone(c)
	if st := h.state("s1"); st.Status != saga.Cancelled {
		t.Fatalf("status %v", st.Status)
	}
}

func TestBuildErrorFailsTheStep(t *testing.T) {
	def := testDefinition(2, 1)
	def.Steps[1].Do = func(data) (saga.Request, error) { return saga.Request{}, errors.New("no address") }
	h := newHarness(t, def)
	h.start("s1")
	h.ok(h.one(), 1)
	c := h.one()
	wantCommand(t, c, "a", true, 1)
	h.undone(c)
	if st := h.state("s1"); st.Status != saga.Cancelled || !strings.Contains(st.Reason, "no address") {
		t.Fatalf("status %v reason %q", st.Status, st.Reason)
	}
}

func TestResumeResendsWhatACrashMayHaveLost(t *testing.T) {
	h := newHarness(t, testDefinition(2, 1))
	down := errors.New("nats down")
	h.tr.OnSend = func(context.Context, saga.Command) error { return down }
	h.start("s1") // recorded, not sent
	lost := h.one()

	h.tr.OnSend = nil
	o2 := h.orchestrator() // a new process on the same store
	if err := o2.Resume(h.ctx); err != nil {
		t.Fatal(err)
	}
	again := h.one()
	if again.ID != lost.ID || !proto.Equal(again.Msg, lost.Msg) {
		t.Fatalf("resent %s %v, want %s %v", again.ID, again.Msg, lost.ID, lost.Msg)
	}
	h.o = o2
	h.ok(again, 1)
	wantCommand(t, h.one(), "b", false, 1)
}

func TestTickResendsAFailedSend(t *testing.T) {
	h := newHarness(t, testDefinition(1, 1))
	fail := true
	h.tr.OnSend = func(context.Context, saga.Command) error {
		if fail {
			return errors.New("nats down")
		}
		return nil
	}
	h.start("s1")
	first := h.one()
	fail = false
	h.advance(time.Second)
	if again := h.one(); again.ID != first.ID {
		t.Fatalf("resent %s, want %s", again.ID, first.ID)
	}
	h.advance(time.Second)
	h.none()
}

func TestStuckSagaIsSurfaced(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h := newHarness(t, testDefinition(2, 1), saga.WithMeterProvider(mp))
	h.start("s1")
	a1 := h.one()
	h.start("s2")
	a2 := h.one()
	h.ok(a1, 1)
	h.reply(h.one(), wrapperspb.Bool(false)) // s1: b declined
	h.one()                                  // compensation of a
	h.ok(a2, 1)
	h.ok(h.one(), 2) // s2 completes
	// s1's compensation never succeeds.
	for range 500 {
		h.advance(10 * time.Second)
		h.tr.Take()
	}
	stuck, err := h.o.Stuck(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stuck) != 1 || stuck[0].ID != "s1" || !stuck[0].Stuck || stuck[0].Status != saga.Compensating {
		t.Fatalf("stuck: %+v", stuck)
	}
	got := collect(t, reader)
	for name, want := range map[string]int64{"saga.started": 2, "saga.completed": 1, "saga.cancelled": 0, "saga.stuck": 1, "saga.compensations": 1} {
		if got[name] != want {
			t.Errorf("%s = %d, want %d (all: %v)", name, got[name], want, got)
		}
	}
	if got["saga.duration"] != 1 {
		t.Errorf("saga.duration has %d samples, want 1", got["saga.duration"])
	}

	// It unsticks when the compensation finally works.
	var last []saga.Command
	for i := 0; len(last) == 0 && i < 10; i++ {
		h.advance(10 * time.Second)
		last = h.tr.Take()
	}
	if len(last) != 1 {
		t.Fatalf("compensation attempts: %v", ids(last))
	}
	h.undone(last[0])
	if stuck, _ := h.o.Stuck(h.ctx); len(stuck) != 0 {
		t.Fatalf("still stuck: %+v", stuck)
	}
	got = collect(t, reader)
	if got["saga.stuck"] != 0 || got["saga.cancelled"] != 1 {
		t.Fatalf("after the end: %v", got)
	}
}

// collect sums every int64 data point and counts histogram samples, by metric name.
func collect(t *testing.T, r sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] += int64(p.Count)
				}
			}
		}
	}
	return out
}

func TestRunDrivesTimersOnTheClock(t *testing.T) {
	h := newHarness(t, testDefinition(1, 2))
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- h.o.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	poll.Until(t, "Run resumed and waiting", func() bool { return h.clock.Timers() > 0 })
	h.start("s1")
	first := waitCommand(t, h.tr)
	// Advance in steps: Run re-arms its timer after every tick, and each step is
	// taken only once Run is waiting on the fake clock again.
	var second saga.Command
	for second.ID == "" {
		poll.Until(t, "Run waiting on the clock", func() bool { return h.clock.Timers() > 0 })
		h.clock.Advance(time.Second)
		for _, c := range h.tr.Take() {
			if c.ID != first.ID { // Run's own resume may resend the first one
				second = c
			}
		}
	}
	wantCommand(t, second, "a", false, 2)
	if second.ID == first.ID {
		t.Fatal("retry reused the id")
	}
	h.ok(second, 1)
	poll.Until(t, "saga completed", func() bool {
		st, err := h.o.Get(h.ctx, "s1")
		return err == nil && st.Status == saga.Completed
	})
}

func TestRunResumesAndFollowsOtherInstances(t *testing.T) {
	h := newHarness(t, testDefinition(2, 1))
	h.start("s1") // started by an instance that then dies
	h.one()
	o2 := h.orchestrator()
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- o2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	resent := waitCommand(t, h.tr)
	wantCommand(t, resent, "a", false, 1)
	// A saga started elsewhere after Run began is followed and timed out here.
	if err := h.o.Start(h.ctx, "s2", newData("s2")); err != nil {
		t.Fatal(err)
	}
	h.one()
	poll.Until(t, "s2 tracked", func() bool { return h.clock.Timers() > 0 })
	// o2 times s2 out (the clock moves only once o2 waits on it) and compensates.
	for range 60 {
		for _, c := range h.tr.Take() {
			if c.SagaID == "s2" {
				wantCommand(t, c, "a", true, 1)
				return
			}
		}
		poll.Until(t, "Run waiting on the clock", func() bool { return h.clock.Timers() > 0 })
		h.clock.Advance(time.Second)
	}
	t.Fatal("s2 was not timed out by the instance that follows it")
}

func waitCommand(t *testing.T, tr interface{ Take() []saga.Command }) saga.Command {
	t.Helper()
	var got []saga.Command
	poll.Until(t, "a command", func() bool { got = append(got, tr.Take()...); return len(got) > 0 })
	if len(got) != 1 {
		t.Fatalf("want one command, got %v", ids(got))
	}
	return got[0]
}

func TestInvalidDefinition(t *testing.T) {
	def := testDefinition(2, 1)
	def.Name = ""
	def.Steps[0].Do = nil
	def.Steps[1].FailedOn = def.Steps[1].SucceededOn
	def.Steps[1].UndoneOn = nil
	_, err := saga.New(def, eventstore.NewMemory(), &sagatest.Transport{})
	if !errors.Is(err, saga.ErrInvalidDefinition) {
		t.Fatalf("New: %v", err)
	}
	for _, want := range []string{"name is required", "Do is required", "both success and failure", "Undo needs UndoneOn"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestChangedDefinitionIsDetected(t *testing.T) {
	h := newHarness(t, testDefinition(2, 1))
	h.start("s1")
	changed := testDefinition(2, 1)
	changed.Steps[0].Name = "renamed"
	o, err := saga.New(changed, h.store, h.tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Get(h.ctx, "s1"); !errors.Is(err, saga.ErrDefinitionMismatch) {
		t.Fatalf("Get with a changed definition: %v", err)
	}
}

func TestOtherDefinitionsAreLeftAlone(t *testing.T) {
	h := newHarness(t, testDefinition(1, 1))
	h.start("s1")
	c := h.one()
	other := testDefinition(1, 1)
	other.Name = "other"
	o, err := saga.New(other, h.store, h.tr, saga.WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Resume(h.ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.HandleReply(h.ctx, saga.Reply{SagaID: "s1", ID: "r", CausationID: c.ID, Msg: wrapperspb.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Get(h.ctx, "s1"); !errors.Is(err, saga.ErrNotFound) {
		t.Fatalf("Get from another definition: %v", err)
	}
	h.none()
	if st := h.state("s1"); st.Status != saga.Running {
		t.Fatalf("status %v", st.Status)
	}
}

func TestRunSurvivesASagaItCannotLoad(t *testing.T) {
	h := newHarness(t, testDefinition(1, 1))
	changed := testDefinition(1, 1)
	changed.Steps[0].Name = "renamed" // same definition name, other steps: unreadable
	old, err := saga.New(changed, h.store, h.tr, saga.WithClock(h.clock), saga.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(h.ctx, "bad", newData("bad")); err != nil {
		t.Fatal(err)
	}
	h.tr.Take()
	if err := h.o.Resume(h.ctx); !errors.Is(err, saga.ErrDefinitionMismatch) {
		t.Fatalf("Resume: %v", err)
	}

	o := h.orchestrator()
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	poll.Until(t, "Run waiting", func() bool { return h.clock.Timers() > 0 })
	if err := o.Start(h.ctx, "good", newData("good")); err != nil {
		t.Fatal(err)
	}
	h.o = o
	h.ok(h.one(), 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := h.state("good"); st.Status != saga.Completed {
		t.Fatalf("good saga: %v", st.Status)
	}
}
