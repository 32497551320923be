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
	"github.com/eventshop/eventshop/pkg/eventstore/eventstoretest"
)

func TestSharedConformanceMemory(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		return eventstore.NewShared(eventstore.NewMemory())
	})
}

func TestSharedConformanceJetStream(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		return eventstore.NewShared(embeddedJetStream(t))
	})
}

// counting counts the subscriptions made of the store beneath, and can make them fail.
type counting struct {
	eventstore.Store
	subscriptions atomic.Int32
	failAfter     atomic.Int32 // > 0: the subscription fails after this many events
}

var errInjected = errors.New("injected subscription failure")

func (c *counting) SubscribeCategory(ctx context.Context, category string, after eventstore.Position, h eventstore.Handler) error {
	c.subscriptions.Add(1)
	n := c.failAfter.Load()
	seen := int32(0)
	return c.Store.SubscribeCategory(ctx, category, after, func(ctx context.Context, e eventstore.Event) error {
		if n > 0 && seen == n {
			return errInjected
		}
		seen++
		return h(ctx, e)
	})
}

// collector is a reader that records what it is handed.
type collector struct {
	mu     sync.Mutex
	got    []eventstore.Event
	gate   chan struct{} // when set, each event waits for it to be closed
	done   chan error
	cancel context.CancelFunc
}

func collect(t *testing.T, s eventstore.Store, cat string, after eventstore.Position, gate chan struct{}) *collector {
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{gate: gate, done: make(chan error, 1), cancel: cancel}
	go func() {
		c.done <- s.SubscribeCategory(ctx, cat, after, func(ctx context.Context, e eventstore.Event) error {
			if c.gate != nil {
				select {
				case <-c.gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			c.mu.Lock()
			c.got = append(c.got, e)
			c.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(cancel)
	return c
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// waitFor waits until c holds n events, then checks they are want[:n] exactly.
func (c *collector) waitFor(t *testing.T, name string, want []eventstore.Event) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.count() < len(want) {
		select {
		case err := <-c.done:
			t.Fatalf("%s: subscription ended after %d of %d events: %v", name, c.count(), len(want), err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d events within 30s", name, c.count(), len(want))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) != len(want) {
		t.Fatalf("%s: got %d events, want %d", name, len(c.got), len(want))
	}
	for i := range want {
		if c.got[i].ID != want[i].ID || c.got[i].Position != want[i].Position {
			t.Fatalf("%s: event %d is %s at %d, want %s at %d", name, i, c.got[i].ID, c.got[i].Position, want[i].ID, want[i].Position)
		}
	}
}

func appendEvents(t *testing.T, s eventstore.Store, cat string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		stream := fmt.Sprintf("%s-%d", cat, i%7)
		ev := eventstore.Event{ID: fmt.Sprintf("ev-%d", i), Type: "T", Data: []byte{byte(i)}}
		if _, err := s.Append(t.Context(), stream, eventstore.Any, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, s eventstore.Store, cat string) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadCategory(t.Context(), cat, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Readers that start at the beginning, in the middle and at the end of a category,
// while events keep coming, each get exactly the events after their checkpoint, in
// order, from one subscription of the store beneath.
func TestSharedReadersAtDifferentCheckpointsShareOneSubscription(t *testing.T) {
	inner := &counting{Store: eventstore.NewMemory()}
	s := eventstore.NewShared(inner)
	appendEvents(t, s, "sh", 0, 50)
	stored := readAll(t, s, "sh")

	live := collect(t, s, "sh", stored[49].Position, nil)
	appendEvents(t, s, "sh", 50, 60)
	fromStart := collect(t, s, "sh", eventstore.Start, nil)
	middle := collect(t, s, "sh", stored[19].Position, nil)
	appendEvents(t, s, "sh", 60, 120)

	all := readAll(t, s, "sh")
	live.waitFor(t, "live reader", all[50:])
	fromStart.waitFor(t, "reader from the start", all)
	middle.waitFor(t, "reader from the middle", all[20:])
	if n := inner.subscriptions.Load(); n != 1 {
		t.Fatalf("the store beneath was subscribed %d times, want once for three readers", n)
	}

	// When the last reader leaves, the shared subscription stops; the next reader
	// starts another.
	for _, c := range []*collector{live, fromStart, middle} {
		c.cancel()
		if err := <-c.done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled reader returned %v", err)
		}
	}
	again := collect(t, s, "sh", all[99].Position, nil)
	appendEvents(t, s, "sh", 120, 125)
	again.waitFor(t, "reader after the others left", readAll(t, s, "sh")[100:])
	if n := inner.subscriptions.Load(); n != 2 {
		t.Fatalf("the store beneath was subscribed %d times, want 2", n)
	}
}

// A reader that stops taking events holds no one else back, and once it goes on it
// has lost nothing: it was detached, read what it missed and joined again.
func TestSharedSlowReaderIsDetachedAndLosesNothing(t *testing.T) {
	inner := &counting{Store: eventstore.NewMemory()}
	s := eventstore.NewShared(inner, eventstore.WithSharedQueue(8))
	gate := make(chan struct{})
	slow := collect(t, s, "sl", eventstore.Start, gate)
	fast := collect(t, s, "sl", eventstore.Start, nil)
	appendEvents(t, s, "sl", 0, 100)
	all := readAll(t, s, "sl")
	fast.waitFor(t, "fast reader", all) // while slow has taken none
	if n := slow.count(); n != 0 {
		t.Fatalf("the stalled reader took %d events", n)
	}
	close(gate)
	slow.waitFor(t, "slow reader", all)
	appendEvents(t, s, "sl", 100, 110)
	all = readAll(t, s, "sl")
	slow.waitFor(t, "slow reader, joined again", all)
	fast.waitFor(t, "fast reader", all)
}

// When the shared subscription fails, every reader's SubscribeCategory returns the
// error, as its own subscription would; a reader that subscribes again is served by
// a new one from its checkpoint.
func TestSharedSubscriptionFailureEndsItsReaders(t *testing.T) {
	inner := &counting{Store: eventstore.NewMemory()}
	inner.failAfter.Store(5)
	s := eventstore.NewShared(inner)
	appendEvents(t, s, "fa", 0, 10)
	a := collect(t, s, "fa", eventstore.Start, nil)
	for _, c := range []*collector{a} {
		select {
		case err := <-c.done:
			if !errors.Is(err, errInjected) {
				t.Fatalf("reader returned %v, want the subscription's error", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("reader did not end within 30s of the subscription's failure")
		}
	}
	all := readAll(t, s, "fa")
	got := a.got
	if len(got) != 5 || got[4].ID != all[4].ID {
		t.Fatalf("reader got %d events before the failure, want the first 5", len(got))
	}
	inner.failAfter.Store(0)
	b := collect(t, s, "fa", got[4].Position, nil)
	b.waitFor(t, "reader resumed", all[5:])
	if n := inner.subscriptions.Load(); n != 2 {
		t.Fatalf("the store beneath was subscribed %d times, want 2", n)
	}
}

// One reader's handler error ends that reader only.
func TestSharedHandlerErrorEndsOnlyItsReader(t *testing.T) {
	s := eventstore.NewShared(eventstore.NewMemory())
	appendEvents(t, s, "he", 0, 5)
	boom := errors.New("boom")
	failed := make(chan error, 1)
	go func() {
		failed <- s.SubscribeCategory(t.Context(), "he", eventstore.Start, func(ctx context.Context, e eventstore.Event) error {
			if e.ID == "ev-7" {
				return boom
			}
			return nil
		})
	}()
	other := collect(t, s, "he", eventstore.Start, nil)
	appendEvents(t, s, "he", 5, 10)
	if err := <-failed; !errors.Is(err, boom) {
		t.Fatalf("failing reader returned %v, want its handler's error", err)
	}
	appendEvents(t, s, "he", 10, 15)
	other.waitFor(t, "other reader", readAll(t, s, "he"))
}
