package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/eventstore"
)

func appendN(t *testing.T, s eventstore.Store, streams, perStream int) {
	t.Helper()
	for v := 1; v <= perStream; v++ {
		for i := range streams {
			ev := eventstore.Event{ID: fmt.Sprintf("e-%d-%d", i, v), Type: "T", Data: []byte{byte(v)}}
			if _, err := s.Append(t.Context(), fmt.Sprintf("p-%d", i), eventstore.Version(v-1), ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestPartitionedKeepsEachStreamInOrderAndHandlesAll(t *testing.T) {
	s := eventstore.NewMemory()
	appendN(t, s, 20, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	last := map[string]eventstore.Version{}
	var handled atomic.Int64
	var progress atomic.Uint64
	err := eventstore.SubscribePartitioned(ctx, s, "p", eventstore.Start, func(_ context.Context, e eventstore.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if e.Version != last[e.Stream]+1 {
			t.Errorf("%s: v%d after v%d", e.Stream, e.Version, last[e.Stream])
		}
		last[e.Stream] = e.Version
		if handled.Add(1) == 200 {
			cancel()
		}
		return nil
	}, eventstore.PartitionedOptions{Workers: 4, Progress: func(p eventstore.Position) {
		if uint64(p) <= progress.Load() {
			t.Errorf("progress went from %d to %d", progress.Load(), p)
		}
		progress.Store(uint64(p))
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SubscribePartitioned = %v, want context.Canceled", err)
	}
	if handled.Load() != 200 {
		t.Fatalf("handled %d events, want 200", handled.Load())
	}
	all, err := s.ReadCategory(t.Context(), "p", eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := eventstore.Position(progress.Load()), all[len(all)-1].Position; got != want {
		t.Errorf("final progress %d, want the last event's %d", got, want)
	}
}

// A stream whose handler blocks holds up only itself: the other streams' events
// are handled meanwhile, and the checkpoint never passes the blocked event.
func TestPartitionedSlowStreamBlocksOnlyItselfAndTheCheckpoint(t *testing.T) {
	s := eventstore.NewMemory()
	appendN(t, s, 8, 3)
	all, err := s.ReadCategory(t.Context(), "p", eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	blocked := all[0] // first event of p-0
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var others atomic.Int64
	var progress atomic.Uint64
	done := make(chan error, 1)
	go func() {
		done <- eventstore.SubscribePartitioned(ctx, s, "p", eventstore.Start, func(ctx context.Context, e eventstore.Event) error {
			if e.Stream == blocked.Stream {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}
			others.Add(1)
			return nil
		}, eventstore.PartitionedOptions{Workers: 8, Progress: func(p eventstore.Position) { progress.Store(uint64(p)) }})
	}()
	// Streams that share p-0's worker wait behind it; with 8 workers over 8 streams
	// at least one other worker is free, and whatever it holds gets handled.
	deadline := time.Now().Add(10 * time.Second)
	for others.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if others.Load() == 0 {
		t.Fatal("no other stream was handled while p-0 blocked")
	}
	if p := eventstore.Position(progress.Load()); p >= blocked.Position {
		t.Fatalf("checkpoint %d passed the unhandled event at %d", p, blocked.Position)
	}
	close(release)
	cancel()
	<-done
}

func TestPartitionedHandlerErrorStopsAndCheckpointStaysBeforeIt(t *testing.T) {
	s := eventstore.NewMemory()
	appendN(t, s, 5, 4)
	all, err := s.ReadCategory(t.Context(), "p", eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := all[7]
	boom := errors.New("boom")
	var progress atomic.Uint64
	var mu sync.Mutex
	afterBad := 0
	err = eventstore.SubscribePartitioned(t.Context(), s, "p", eventstore.Start, func(_ context.Context, e eventstore.Event) error {
		if e.Position == bad.Position {
			return boom
		}
		if e.Stream == bad.Stream && e.Version > bad.Version {
			mu.Lock()
			afterBad++
			mu.Unlock()
		}
		return nil
	}, eventstore.PartitionedOptions{Workers: 3, Progress: func(p eventstore.Position) { progress.Store(uint64(p)) }})
	if !errors.Is(err, boom) {
		t.Fatalf("SubscribePartitioned = %v, want the handler's error", err)
	}
	if p := eventstore.Position(progress.Load()); p >= bad.Position {
		t.Fatalf("checkpoint %d at or past the failed event %d", p, bad.Position)
	}
	if afterBad != 0 {
		t.Fatalf("%d later events of the failed stream were handled out of order", afterBad)
	}
}

// A subscription that dies mid-way and resumes from its last reported checkpoint
// handles every event at least once, and each stream's events in order within
// each run, whatever the other workers had finished.
func TestPartitionedResumeFromProgressSkipsNothing(t *testing.T) {
	s := eventstore.NewMemory()
	appendN(t, s, 16, 8)
	all, err := s.ReadCategory(t.Context(), "p", eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[eventstore.Position]int{}
	var mu sync.Mutex
	var progress atomic.Uint64
	failAt := map[eventstore.Position]bool{all[20].Position: true, all[77].Position: true}
	for run := 0; run < 10; run++ {
		ctx, cancel := context.WithCancel(t.Context())
		last := map[string]eventstore.Version{}
		err := eventstore.SubscribePartitioned(ctx, s, "p", eventstore.Position(progress.Load()), func(_ context.Context, e eventstore.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if failAt[e.Position] {
				delete(failAt, e.Position) // fails once, like a crash
				return errors.New("crash")
			}
			if v := last[e.Stream]; v != 0 && e.Version != v+1 {
				t.Errorf("run %d: %s v%d after v%d", run, e.Stream, e.Version, v)
			}
			last[e.Stream] = e.Version
			seen[e.Position]++
			if len(seen) == len(all) {
				cancel()
			}
			return nil
		}, eventstore.PartitionedOptions{Workers: 5, Queue: 4, Progress: func(p eventstore.Position) { progress.Store(uint64(p)) }})
		cancel()
		if errors.Is(err, context.Canceled) {
			break
		}
	}
	for _, e := range all {
		if seen[e.Position] == 0 {
			t.Fatalf("event %s v%d never handled", e.Stream, e.Version)
		}
	}
}
