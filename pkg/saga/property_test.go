package saga_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/saga/sagatest"
)

// TestPropertyRandomFaults runs sagas under random fault schedules, one seed each:
// participants fail, lose commands or replies, answer twice; replies are delivered
// late and out of order; two orchestrator instances share the store and race on
// the same sagas; either one crashes at random, right after an append (before its
// send) or right after a send, and is replaced by a new instance that resumes.
// After every run each saga must have ended, every forward effect that happened
// must have been compensated exactly once if it was cancelled, compensation
// commands must exist only for steps that completed (or timed out for good), in
// reverse order, every command must have been logged before it was sent, one id
// must always carry one command, and nothing may be sent once a saga has ended.
func TestPropertyRandomFaults(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	var crashes, conflicts atomic.Int64
	t.Run("seeds", func(t *testing.T) {
		for seed := range int64(seeds) {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, seed)
				w.run()
				crashes.Add(int64(w.crashes))
				conflicts.Add(int64(w.conflicts))
			})
		}
	})
	// The faults the property is about must actually have happened.
	if crashes.Load() == 0 || conflicts.Load() == 0 {
		t.Fatalf("crashes %d, OCC conflicts between instances %d: the faults were not exercised", crashes.Load(), conflicts.Load())
	}
	t.Logf("%d seeds: %d instance crashes, %d OCC conflicts", seeds, crashes.Load(), conflicts.Load())
}

// TestCrashAtEveryPoint replays one scripted saga (a and b succeed, c is declined,
// b's compensation fails once) and crashes the orchestrator once, at every point in
// turn: right after each append (so the send it logged never happens) and right
// after each send. The new instance must finish it exactly as an uncrashed run does.
func TestCrashAtEveryPoint(t *testing.T) {
	base := newWorld(t, 0)
	base.runScripted(0, 0)
	appends, sends := base.insts[0].appends, base.insts[0].sends
	if appends < 5 || sends < 5 {
		t.Fatalf("scripted run made only %d appends and %d sends", appends, sends)
	}
	want := base.final("s0")
	for n := 1; n <= appends; n++ {
		t.Run(fmt.Sprint("after append ", n), func(t *testing.T) {
			w := newWorld(t, 0)
			w.runScripted(n, 0)
			if w.crashes != 1 {
				t.Fatalf("%d crashes", w.crashes)
			}
			if got := w.final("s0"); got != want {
				t.Fatalf("ended %s, want %s", got, want)
			}
		})
	}
	for n := 1; n <= sends; n++ {
		t.Run(fmt.Sprint("after send ", n), func(t *testing.T) {
			w := newWorld(t, 0)
			w.runScripted(0, n)
			if got := w.final("s0"); got != want {
				t.Fatalf("ended %s, want %s", got, want)
			}
		})
	}
}

// runScripted drives saga s0 with one instance, FIFO delivery and the scripted
// participant, crashing the instance after its appendN-th append or sendN-th send.
func (w *world) runScripted(appendN, sendN int) {
	w.t.Helper()
	w.insts = w.insts[:1]
	in := w.insts[0]
	in.crashAfterAppend, in.crashAfterSend = appendN, sendN
	w.script = func(c saga.Command) proto.Message {
		switch {
		case !c.Compensation && c.Step == "c":
			return wrapperspb.Bool(false)
		case !c.Compensation:
			return wrapperspb.Int64(int64(stepIndex(c.Step)))
		case c.Step == "b" && c.Attempt == 1:
			return wrapperspb.UInt32(1)
		}
		return wrapperspb.UInt64(1)
	}
	if err := in.o.Start(w.ctx, "s0", newData("s0")); err != nil {
		w.t.Fatalf("Start: %v", err)
	}
	for iter := 0; ; iter++ {
		if iter > 1000 {
			w.t.Fatal("scripted saga does not end")
		}
		w.replaceDead()
		switch {
		case len(w.cmds) > 0:
			c := w.cmds[0]
			w.cmds = w.cmds[1:]
			w.participate(c)
		case len(w.replies) > 0:
			r := w.replies[0]
			w.replies = w.replies[1:]
			if err := w.insts[0].o.HandleReply(w.ctx, r); err != nil && !isCrash(err) {
				w.t.Fatal(err)
			}
		case w.ended("s0"):
			w.check("s0")
			return
		default:
			w.clock.Advance(time.Second)
			if err := w.insts[0].o.Tick(w.ctx); err != nil && !isCrash(err) {
				w.t.Fatal(err)
			}
		}
	}
}

// final summarises how a saga ended: status, attempts and compensation attempts.
func (w *world) final(id string) string {
	o, err := saga.New(w.def, w.store, &sagatest.Transport{})
	if err != nil {
		w.t.Fatal(err)
	}
	st, err := o.Get(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return fmt.Sprintf("%v attempts %v undo attempts %v reason %q", st.Status, st.Attempts, st.UndoAttempts, st.Reason)
}

const sagasPerWorld = 2

type stepKey struct {
	saga string
	step int
}

type commandKey struct {
	saga    string
	step    int
	undo    bool
	attempt int
}

type world struct {
	t       *testing.T
	ctx     context.Context
	rng     *rand.Rand
	store   *eventstore.Memory
	clock   *sagatest.Clock
	def     saga.Definition[data]
	insts   []*instance
	cmds    []saga.Command // on their way to participants
	replies []saga.Reply   // on their way to the orchestrators
	sent    map[string]saga.Command
	byKey   map[commandKey]string
	part    participant
	script  func(saga.Command) proto.Message // fixed answers instead of random faults

	crashes, conflicts int
}

// participant is every test participant at once: it deduplicates by command id (an
// inbox), decides each step's outcome once per (saga, step) (idempotence by business
// key), and refuses a step whose compensation already ran (a late command must not
// undo the undo).
type participant struct {
	handled  map[string]bool
	applied  map[stepKey]bool
	applies  map[stepKey]int
	declined map[stepKey]bool
	undone   map[stepKey]bool
	undoes   map[stepKey]int
	replyIDs int
}

type instance struct {
	o                *saga.Orchestrator[data]
	dead             bool
	appends, sends   int
	crashAfterAppend int
	crashAfterSend   int
}

func newWorld(t *testing.T, seed int64) *world {
	w := &world{
		t: t, ctx: context.Background(), rng: rand.New(rand.NewSource(seed)),
		store: eventstore.NewMemory(), clock: sagatest.NewClock(epoch),
		def:  testDefinition(4, 3),
		sent: map[string]saga.Command{}, byKey: map[commandKey]string{},
		part: participant{
			handled: map[string]bool{}, applied: map[stepKey]bool{}, applies: map[stepKey]int{},
			declined: map[stepKey]bool{}, undone: map[stepKey]bool{}, undoes: map[stepKey]int{},
		},
	}
	w.insts = []*instance{w.newInstance(), w.newInstance()}
	return w
}

func (w *world) newInstance() *instance {
	in := &instance{}
	o, err := saga.New(w.def, crashStore{Store: w.store, in: in, w: w}, crashTransport{w: w, in: in},
		saga.WithClock(w.clock), saga.WithLogger(quiet))
	if err != nil {
		w.t.Fatal(err)
	}
	in.o = o
	_ = o.Resume(w.ctx) // a crash during Resume is one more fault
	return in
}

func (w *world) sagaID(i int) string { return fmt.Sprintf("s%d", i) }

func (w *world) run() {
	for i := range sagasPerWorld {
		w.replaceDead()
		in := w.pick()
		if w.rng.Intn(5) == 0 {
			in.crashAfterAppend = in.appends + 1 // Start's append lands, its send does not
		}
		if err := in.o.Start(w.ctx, w.sagaID(i), newData(w.sagaID(i))); err != nil {
			w.t.Fatalf("Start: %v", err)
		}
	}
	for iter := 0; ; iter++ {
		if iter > 50000 {
			w.t.Fatalf("no end after %d steps; in flight: %d commands, %d replies", iter, len(w.cmds), len(w.replies))
		}
		w.replaceDead()
		if len(w.cmds) == 0 && len(w.replies) == 0 && w.allEnded() {
			break
		}
		switch r := w.rng.Intn(100); {
		case r < 30 && len(w.cmds) > 0:
			w.participate(take(w.rng, &w.cmds))
		case r < 60 && len(w.replies) > 0:
			rep := take(w.rng, &w.replies)
			if w.rng.Intn(10) == 0 {
				w.replies = append(w.replies, rep) // delivered again later
			}
			if err := w.pick().o.HandleReply(w.ctx, rep); err != nil && !isCrash(err) {
				w.t.Fatalf("HandleReply: %v", err)
			}
		case r < 63:
			w.pick().dead = true
		case r < 70:
			in := w.pick()
			if w.rng.Intn(2) == 0 {
				in.crashAfterAppend = in.appends + 1 + w.rng.Intn(3)
			} else {
				in.crashAfterSend = in.sends + 1 + w.rng.Intn(3)
			}
		default:
			w.clock.Advance(time.Duration(w.rng.Intn(6000)) * time.Millisecond)
			if err := w.pick().o.Tick(w.ctx); err != nil && !isCrash(err) {
				w.t.Fatalf("Tick: %v", err)
			}
		}
	}
	// Ended and quiet: later ticks, even far later, must send nothing (checkSend).
	for range 5 {
		w.clock.Advance(time.Hour)
		for _, in := range w.insts {
			_ = in.o.Tick(w.ctx)
		}
	}
	if len(w.cmds) != 0 {
		w.t.Fatalf("commands after the end: %v", ids(w.cmds))
	}
	for i := range sagasPerWorld {
		w.check(w.sagaID(i))
	}
}

func (w *world) pick() *instance { return w.insts[w.rng.Intn(len(w.insts))] }

// take removes and returns a random element of q: delivery in any order.
func take[T any](rng *rand.Rand, q *[]T) T {
	i := rng.Intn(len(*q))
	v := (*q)[i]
	*q = slices.Delete(*q, i, i+1)
	return v
}

func (w *world) replaceDead() {
	for i, in := range w.insts {
		for in.dead {
			w.crashes++
			in = w.newInstance()
			w.insts[i] = in
		}
	}
}

func (w *world) allEnded() bool {
	for i := range sagasPerWorld {
		if !w.ended(w.sagaID(i)) {
			return false
		}
	}
	return true
}

func (w *world) ended(id string) bool {
	evs, err := w.store.ReadStream(w.ctx, saga.StreamName(id), 0)
	if err != nil {
		return false
	}
	last := evs[len(evs)-1].Type
	return last == "eventshop.saga.v1.SagaCompleted" || last == "eventshop.saga.v1.SagaCancelled"
}

// checkSend vets every command an instance sends, before the world carries it.
func (w *world) checkSend(c saga.Command) {
	w.t.Helper()
	if w.ended(c.SagaID) {
		w.t.Errorf("command %s sent after saga %s ended", c.ID, c.SagaID)
	}
	if ok, err := logged(w.ctx, w.store, c.SagaID, c.ID); err != nil || !ok {
		w.t.Errorf("command %s sent before it was logged (err %v)", c.ID, err)
	}
	if prev, ok := w.sent[c.ID]; ok {
		if prev.Step != c.Step || prev.Compensation != c.Compensation || prev.Attempt != c.Attempt ||
			prev.Subject != c.Subject || !proto.Equal(prev.Msg, c.Msg) {
			w.t.Errorf("id %s carries two commands: %+v and %+v", c.ID, prev, c)
		}
	}
	w.sent[c.ID] = c
	k := commandKey{c.SagaID, stepIndex(c.Step), c.Compensation, c.Attempt}
	if id, ok := w.byKey[k]; ok && id != c.ID {
		w.t.Errorf("%+v sent with ids %s and %s", k, id, c.ID)
	}
	w.byKey[k] = c.ID
}

func stepIndex(name string) int { return int(name[0] - 'a') }

// participate plays the participant for one delivered command.
func (w *world) participate(c saga.Command) {
	p := &w.part
	if p.handled[c.ID] {
		return // inbox: seen this id
	}
	p.handled[c.ID] = true
	k := stepKey{c.SagaID, stepIndex(c.Step)}
	reply := func(m proto.Message, times int) {
		for range times {
			p.replyIDs++
			w.replies = append(w.replies, saga.Reply{SagaID: c.SagaID, ID: fmt.Sprint("r", p.replyIDs), CausationID: c.ID, Msg: m})
		}
	}
	if w.script != nil {
		m := w.script(c)
		switch m.(type) {
		case *wrapperspb.Int64Value:
			p.applied[k] = true
			p.applies[k]++
		case *wrapperspb.UInt64Value:
			if p.applied[k] {
				p.applied[k] = false
				p.undoes[k]++
			}
		}
		reply(m, 1)
		return
	}
	r := w.rng.Intn(100)
	if !c.Compensation {
		// A step's outcome is decided once per (saga, step): a retry, a late
		// command or one arriving after the compensation gets the same answer.
		switch {
		case p.undone[k] || p.declined[k]:
			reply(wrapperspb.Bool(false), 1)
			return
		case p.applied[k]:
		case r < 10:
			p.declined[k] = true
			reply(wrapperspb.Bool(false), 1)
			return
		case r < 20: // command lost
			return
		default:
			p.applied[k] = true
			p.applies[k]++
		}
		switch r = w.rng.Intn(100); {
		case r < 15: // reply lost
		case r < 30:
			reply(wrapperspb.Int64(int64(100*k.step+c.Attempt)), 2)
		default:
			reply(wrapperspb.Int64(int64(100*k.step+c.Attempt)), 1)
		}
		return
	}
	switch {
	case r < 20:
		reply(wrapperspb.UInt32(1), 1)
	case r < 35: // command lost
	default:
		if !p.undone[k] {
			p.undone[k] = true
			if p.applied[k] {
				p.applied[k] = false
				p.undoes[k]++
			}
		}
		if r >= 50 { // else the reply is lost
			reply(wrapperspb.UInt64(1), 1)
		}
	}
}

// check verifies one ended saga against what the participant did.
func (w *world) check(id string) {
	w.t.Helper()
	o, err := saga.New(w.def, w.store, &sagatest.Transport{}, saga.WithClock(w.clock))
	if err != nil {
		w.t.Fatal(err)
	}
	st, err := o.Get(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	compensable := map[int]bool{}
	attempts := map[int]int{}
	var undoOrder []int
	for _, e := range st.History {
		switch e := e.Event.(type) {
		case *sagav1.StepStarted:
			attempts[int(e.GetStep())] = max(attempts[int(e.GetStep())], int(e.GetAttempt()))
		case *sagav1.StepFailed:
			// After a timed-out attempt, which may still be carried out.
			if attempts[int(e.GetStep())] > 1 {
				compensable[int(e.GetStep())] = true
			}
		case *sagav1.StepSucceeded:
			compensable[int(e.GetStep())] = true
		case *sagav1.StepTimedOut:
			if e.GetRetryTime() == nil {
				compensable[int(e.GetStep())] = true
			}
		case *sagav1.CompensationStarted:
			if e.GetAttempt() == 1 {
				undoOrder = append(undoOrder, int(e.GetStep()))
			}
		}
	}
	undoSent := map[int]bool{}
	for _, c := range w.sent {
		if c.SagaID == id && c.Compensation {
			undoSent[stepIndex(c.Step)] = true
		}
	}
	switch st.Status {
	case saga.Completed:
		for i := range w.def.Steps {
			k := stepKey{id, i}
			if !w.part.applied[k] || w.part.applies[k] != 1 || w.part.undoes[k] != 0 {
				w.t.Errorf("%s completed but step %d: applied %v (%d times), undone %d times", id, i, w.part.applied[k], w.part.applies[k], w.part.undoes[k])
			}
		}
		if len(undoSent) != 0 {
			w.t.Errorf("%s completed yet compensations were sent for %v", id, undoSent)
		}
	case saga.Cancelled:
		for i := range w.def.Steps {
			k := stepKey{id, i}
			if w.part.applied[k] || w.part.undoes[k] > 1 {
				w.t.Errorf("%s cancelled but step %d is still applied=%v, undone %d times", id, i, w.part.applied[k], w.part.undoes[k])
			}
			if undoSent[i] != compensable[i] {
				w.t.Errorf("%s step %d: compensation sent %v, but completed or timed out %v", id, i, undoSent[i], compensable[i])
			}
		}
		if !slices.IsSortedFunc(undoOrder, func(a, b int) int { return b - a }) {
			w.t.Errorf("%s compensated in order %v, want reverse step order", id, undoOrder)
		}
	default:
		w.t.Errorf("%s ended in %v", id, st.Status)
	}
}

func isCrash(err error) bool { return err != nil && errors.Is(err, errCrash) }

// crashStore is the shared store as seen by one instance: once the instance is
// dead, it can neither read nor write.
type crashStore struct {
	eventstore.Store
	in *instance
	w  *world
}

func (s crashStore) Append(ctx context.Context, stream string, expected eventstore.Version, evs ...eventstore.Event) (eventstore.Version, error) {
	if s.in.dead {
		return 0, errCrash
	}
	v, err := s.Store.Append(ctx, stream, expected, evs...)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		s.w.conflicts++
	}
	if err == nil {
		s.in.appends++
		if s.in.appends == s.in.crashAfterAppend {
			s.in.dead = true
		}
	}
	return v, err
}

func (s crashStore) ReadStream(ctx context.Context, stream string, from eventstore.Version) ([]eventstore.Event, error) {
	if s.in.dead {
		return nil, errCrash
	}
	return s.Store.ReadStream(ctx, stream, from)
}

func (s crashStore) ReadCategory(ctx context.Context, category string, after eventstore.Position, limit int) ([]eventstore.Event, error) {
	if s.in.dead {
		return nil, errCrash
	}
	return s.Store.ReadCategory(ctx, category, after, limit)
}

// crashTransport hands commands to the world unless its instance is dead.
type crashTransport struct {
	w  *world
	in *instance
}

func (t crashTransport) Send(_ context.Context, c saga.Command) error {
	if t.in.dead {
		return errCrash
	}
	t.w.checkSend(c)
	t.w.cmds = append(t.w.cmds, c)
	t.in.sends++
	if t.in.sends == t.in.crashAfterSend {
		t.in.dead = true
	}
	return nil
}
