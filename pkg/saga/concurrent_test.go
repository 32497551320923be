package saga_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/saga/sagatest"
)

// chanTransport hands commands to the participant goroutine and records every id.
type chanTransport struct {
	ch chan<- saga.Command
	mu *sync.Mutex
	by map[string]saga.Command
	t  *testing.T
}

func (c chanTransport) Send(_ context.Context, cmd saga.Command) error {
	c.mu.Lock()
	if prev, ok := c.by[cmd.ID]; ok && !proto.Equal(prev.Msg, cmd.Msg) {
		c.t.Errorf("id %s carries two commands", cmd.ID)
	}
	c.by[cmd.ID] = cmd
	c.mu.Unlock()
	c.ch <- cmd
	return nil
}

// TestInstancesRaceConcurrently runs two instances truly in parallel on the same
// sagas: both start sagas, both receive every reply at the same moment and both
// tick. Each saga must end as scripted, with one command id per step and per
// compensation, and every effect applied once.
func TestInstancesRaceConcurrently(t *testing.T) {
	const sagas = 24
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := eventstore.NewMemory()
	clock := sagatest.NewClock(epoch)
	cmds := make(chan saga.Command, 1024)
	var mu sync.Mutex
	sent := map[string]saga.Command{}
	var insts []*saga.Orchestrator[data]
	for range 2 {
		o, err := saga.New(testDefinition(4, 1), store, chanTransport{ch: cmds, mu: &mu, by: sent, t: t},
			saga.WithClock(clock), saga.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, o)
	}

	// The participant: step c of every third saga is declined; all else succeeds.
	applied := map[stepKey]int{}
	undone := map[stepKey]int{}
	handled := map[string]bool{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var c saga.Command
			select {
			case <-ctx.Done():
				return
			case c = <-cmds:
			}
			if handled[c.ID] {
				continue
			}
			handled[c.ID] = true
			k := stepKey{c.SagaID, stepIndex(c.Step)}
			var m proto.Message
			switch {
			case c.Compensation:
				mu.Lock()
				undone[k]++
				mu.Unlock()
				m = wrapperspb.UInt64(1)
			case c.Step == "c" && c.SagaID[len(c.SagaID)-1]%3 == 0:
				m = wrapperspb.Bool(false)
			default:
				mu.Lock()
				applied[k]++
				mu.Unlock()
				m = wrapperspb.Int64(1)
			}
			r := saga.Reply{SagaID: c.SagaID, ID: c.ID + "/r", CausationID: c.ID, Msg: m}
			for _, o := range insts {
				wg.Go(func() {
					if err := o.HandleReply(ctx, r); err != nil && ctx.Err() == nil {
						t.Errorf("HandleReply: %v", err)
					}
				})
			}
		}
	})

	var starts sync.WaitGroup
	for i := range sagas {
		starts.Go(func() {
			id := fmt.Sprintf("r%d", i)
			if err := insts[i%2].Start(ctx, id, newData(id)); err != nil {
				t.Errorf("Start %s: %v", id, err)
			}
		})
	}
	starts.Wait()
	for _, o := range insts {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := o.Tick(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("Tick: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	poll.Until(t, "every saga ended", func() bool {
		for i := range sagas {
			st, err := insts[0].Get(ctx, fmt.Sprintf("r%d", i))
			if err != nil || !st.Status.Final() {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	ids := map[stepKey]map[string]bool{}
	for id, c := range sent {
		k := stepKey{c.SagaID, stepIndex(c.Step)}
		if c.Compensation {
			k.step += 100
		}
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][id] = true
	}
	for k, set := range ids {
		if len(set) != 1 {
			t.Errorf("%v sent under %d ids", k, len(set))
		}
	}
	for i := range sagas {
		id := fmt.Sprintf("r%d", i)
		st, err := insts[1].Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		declined := id[len(id)-1]%3 == 0
		want := saga.Completed
		if declined {
			want = saga.Cancelled
		}
		if st.Status != want {
			t.Errorf("%s ended %v, want %v", id, st.Status, want)
		}
		for s := range 4 {
			k := stepKey{id, s}
			wantApplied, wantUndone := 1, 0
			if declined && s >= 2 {
				wantApplied = 0
			}
			if declined && s < 2 {
				wantUndone = 1
			}
			if applied[k] != wantApplied || undone[k] != wantUndone {
				t.Errorf("%s step %d applied %d undone %d, want %d and %d", id, s, applied[k], undone[k], wantApplied, wantUndone)
			}
		}
	}
}

// A reply that reaches an instance whose copy of the saga is behind (another
// instance moved the saga on since) moves the saga: the instance reads the saga
// again instead of ignoring the reply as one that answers no step, which would
// leave the step waiting for its timeout.
func TestReplyToAStaleInstanceMovesTheSaga(t *testing.T) {
	h := newHarness(t, testDefinition(4, 1))
	a := h.o
	b := h.orchestrator()
	h.start("s1") // a's copy: step a in progress
	c1 := h.one()
	h.o = b // b takes the first reply and starts step b
	h.ok(c1, 10)
	c2 := h.one()
	wantCommand(t, c2, "b", false, 1)

	h.o = a // the second reply reaches a, whose copy still waits on step a
	h.ok(c2, 11)
	c3 := h.one()
	wantCommand(t, c3, "c", false, 1)
	if st := h.state("s1"); st.Step != 2 {
		t.Fatalf("saga at step %d, want 2", st.Step)
	}
}
