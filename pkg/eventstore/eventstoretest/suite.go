// Package eventstoretest is the conformance suite every eventstore.Store backend must
// pass: one contract, checked the same way against memory, JetStream and EventStoreDB.
// Backends call Run from their own tests with a constructor for a fresh store.
package eventstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventshop/eventshop/pkg/eventstore"
)

// NewStore returns a store for one test; it registers its own cleanup with t.
type NewStore func(t *testing.T) eventstore.Store

// Run runs the whole suite as subtests of t. Every subtest uses categories with a
// random name, so runs against a persistent server never see each other's events.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"ExpectedVersion", testExpectedVersion},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"IdempotentRetry", testIdempotentRetry},
		{"ReadFromVersion", testReadFromVersion},
		{"MissingStream", testMissingStream},
		{"InvalidInput", testInvalidInput},
		{"CategoryRead", testCategoryRead},
		{"SubscribeCatchUpLiveResume", testSubscribe},
		{"SubscribeHandlerError", testSubscribeHandlerError},
		{"AllOrNothingAppend", testAllOrNothing},
		{"Load10k", testLoad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Category returns a fresh random category name.
func Category(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewEvent returns a valid event of type typ with a fresh UUID (EventStoreDB demands
// UUID ids) and some metadata.
func NewEvent(typ string, data string) eventstore.Event {
	return eventstore.Event{
		ID:   uuid.NewString(),
		Type: typ,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC),
		Metadata: map[string]string{
			eventstore.MetaCorrelationID: "corr-1",
			eventstore.MetaTraceParent:   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		},
		Data: []byte(data),
	}
}

func events(n int, typ string) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = NewEvent(typ, fmt.Sprintf("%s-%d", typ, i))
	}
	return evs
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.Version, evs ...eventstore.Event) eventstore.Version {
	t.Helper()
	v, err := s.Append(ctxFor(t), stream, expected, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s at %v: %v", len(evs), stream, expected, err)
	}
	return v
}

func mustRead(t *testing.T, s eventstore.Store, stream string, from eventstore.Version) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadStream(ctxFor(t), stream, from)
	if err != nil {
		t.Fatalf("read %s from %d: %v", stream, from, err)
	}
	return evs
}

func wantWrongVersion(t *testing.T, err error, stream string, expected, actual eventstore.Version) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("append to %s at %v: err = %v, want ErrWrongExpectedVersion", stream, expected, err)
	}
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("err %v is not a *WrongExpectedVersionError", err)
	}
	want := eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	if *wev != want {
		t.Fatalf("conflict = %+v, want %+v", *wev, want)
	}
}

// sameEvent compares what the caller wrote and what the store must return.
func sameEvent(t *testing.T, got, want eventstore.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || string(got.Data) != string(want.Data) ||
		!got.Time.Equal(want.Time) || !reflect.DeepEqual(got.Metadata, want.Metadata) {
		t.Fatalf("event differs:\n got %+v\nwant %+v", got, want)
	}
}

func testExpectedVersion(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	stream := Category("ev") + "-1"
	if v := mustAppend(t, s, stream, eventstore.NoStream, events(2, "Created")...); v != 2 {
		t.Fatalf("first append version = %d, want 2", v)
	}
	_, err := s.Append(ctx, stream, eventstore.NoStream, NewEvent("Again", ""))
	wantWrongVersion(t, err, stream, eventstore.NoStream, 2)

	if v := mustAppend(t, s, stream, 2, NewEvent("Exact", "")); v != 3 {
		t.Fatalf("exact append version = %d, want 3", v)
	}
	_, err = s.Append(ctx, stream, 2, NewEvent("Stale", ""))
	wantWrongVersion(t, err, stream, 2, 3)
	_, err = s.Append(ctx, stream, 7, NewEvent("Ahead", ""))
	wantWrongVersion(t, err, stream, 7, 3)

	if v := mustAppend(t, s, stream, eventstore.Any, NewEvent("Any", "")); v != 4 {
		t.Fatalf("any append version = %d, want 4", v)
	}
	other := Category("ev") + "-2"
	if v := mustAppend(t, s, other, eventstore.Any, NewEvent("AnyNew", "")); v != 1 {
		t.Fatalf("any append to a new stream = %d, want 1", v)
	}
	missing := Category("ev") + "-3"
	_, err = s.Append(ctx, missing, 1, NewEvent("Missing", ""))
	wantWrongVersion(t, err, missing, 1, 0)

	got := mustRead(t, s, stream, 1)
	var types []string
	for i, e := range got {
		if e.Version != eventstore.Version(i+1) || e.Stream != stream {
			t.Fatalf("event %d: stream %s version %d", i, e.Stream, e.Version)
		}
		types = append(types, e.Type)
	}
	if want := []string{"Created", "Created", "Exact", "Any"}; !reflect.DeepEqual(types, want) {
		t.Fatalf("types = %v, want %v", types, want)
	}
}

func testConcurrentAppenders(t *testing.T, s eventstore.Store) {
	const writers, rounds = 8, 5
	stream := Category("cc") + "-1"
	for round := range rounds {
		expected := eventstore.Version(round)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			wins   int
			losses []error
		)
		start := make(chan struct{})
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := s.Append(ctxFor(t), stream, expected, NewEvent("Raced", ""))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && v == expected+1:
					wins++
				case err == nil:
					losses = append(losses, fmt.Errorf("won with version %d, want %d", v, expected+1))
				default:
					losses = append(losses, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || len(losses) != writers-1 {
			t.Fatalf("round %d: %d winners, %d losers (%v); want exactly one winner", round, wins, len(losses), losses)
		}
		for _, err := range losses {
			wantWrongVersion(t, err, stream, expected, expected+1)
		}
	}
	if got := mustRead(t, s, stream, 1); len(got) != rounds {
		t.Fatalf("stream holds %d events, want %d", len(got), rounds)
	}
}

func testIdempotentRetry(t *testing.T, s eventstore.Store) {
	stream := Category("id") + "-1"
	first := events(2, "Placed")
	v1 := mustAppend(t, s, stream, eventstore.NoStream, first...)
	if v2 := mustAppend(t, s, stream, eventstore.NoStream, first...); v2 != v1 {
		t.Fatalf("retried append returned %d, first returned %d", v2, v1)
	}
	next := NewEvent("Paid", "")
	if v := mustAppend(t, s, stream, v1, next); v != 3 {
		t.Fatalf("append after retry = %d, want 3", v)
	}
	// A late retry, after the stream moved on, still reports the original result.
	if v := mustAppend(t, s, stream, eventstore.NoStream, first...); v != v1 {
		t.Fatalf("late retry returned %d, want %d", v, v1)
	}
	if v := mustAppend(t, s, stream, v1, next); v != 3 {
		t.Fatalf("retried exact append returned %d, want 3", v)
	}
	anyEv := NewEvent("Shipped", "")
	va := mustAppend(t, s, stream, eventstore.Any, anyEv)
	if vb := mustAppend(t, s, stream, eventstore.Any, anyEv); vb != va {
		t.Fatalf("retried any append returned %d, want %d", vb, va)
	}
	got := mustRead(t, s, stream, 1)
	if len(got) != 4 {
		t.Fatalf("stream holds %d events after retries, want 4", len(got))
	}
	for i, want := range append(append(first, next), anyEv) {
		sameEvent(t, got[i], want)
	}
}

func testReadFromVersion(t *testing.T, s eventstore.Store) {
	stream := Category("rd") + "-a"
	evs := events(5, "Step")
	mustAppend(t, s, stream, eventstore.NoStream, evs[:2]...)
	mustAppend(t, s, stream, 2, evs[2:4]...)
	mustAppend(t, s, stream, 4, evs[4])
	for _, tc := range []struct {
		from eventstore.Version
		want []eventstore.Event
	}{
		{0, evs}, {1, evs}, {2, evs[1:]}, {3, evs[2:]}, {5, evs[4:]}, {6, nil}, {100, nil},
	} {
		got := mustRead(t, s, stream, tc.from)
		if len(got) != len(tc.want) {
			t.Fatalf("from %d: %d events, want %d", tc.from, len(got), len(tc.want))
		}
		for i := range got {
			sameEvent(t, got[i], tc.want[i])
			if wantV := eventstore.Version(5 - len(tc.want) + i + 1); got[i].Version != wantV || got[i].Stream != stream {
				t.Fatalf("from %d: event %d is %s v%d, want %s v%d", tc.from, i, got[i].Stream, got[i].Version, stream, wantV)
			}
		}
	}
}

func testMissingStream(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	cat := Category("ms")
	if _, err := s.ReadStream(ctx, cat+"-none", 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read of a missing stream in a missing category: err = %v, want ErrStreamNotFound", err)
	}
	mustAppend(t, s, cat+"-some", eventstore.NoStream, NewEvent("X", ""))
	if _, err := s.ReadStream(ctx, cat+"-none", 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read of a missing stream: err = %v, want ErrStreamNotFound", err)
	}
	if evs, err := s.ReadCategory(ctx, Category("empty"), eventstore.Start, 0); err != nil || len(evs) != 0 {
		t.Fatalf("read of an empty category = %d events, %v; want none, nil", len(evs), err)
	}
}

func testInvalidInput(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	cat := Category("in")
	for _, name := range []string{"", "nodash", "-id", cat + "-", "bad.cat-1", cat + "-a.b", cat + "-a b", cat + "-a*"} {
		if _, err := s.Append(ctx, name, eventstore.Any, NewEvent("X", "")); !errors.Is(err, eventstore.ErrInvalidStream) {
			t.Errorf("append to %q: err = %v, want ErrInvalidStream", name, err)
		}
		if _, err := s.ReadStream(ctx, name, 1); !errors.Is(err, eventstore.ErrInvalidStream) {
			t.Errorf("read of %q: err = %v, want ErrInvalidStream", name, err)
		}
	}
	if _, err := s.ReadCategory(ctx, "bad-cat", eventstore.Start, 0); !errors.Is(err, eventstore.ErrInvalidStream) {
		t.Errorf("category read of bad-cat: err = %v, want ErrInvalidStream", err)
	}
	noType := NewEvent("", "")
	dup := NewEvent("Dup", "")
	for name, evs := range map[string][]eventstore.Event{
		"none":      nil,
		"no id":     {{Type: "X"}},
		"no type":   {noType},
		"repeat id": {dup, dup},
	} {
		if _, err := s.Append(ctx, cat+"-1", eventstore.Any, evs...); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("append %s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
	if _, err := s.ReadStream(ctx, cat+"-1", 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("invalid appends stored something: read err = %v", err)
	}
}

func testCategoryRead(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	cat, other := Category("ca"), Category("cb")
	type write struct {
		stream string
		n      int
	}
	plan := []write{{cat + "-1", 2}, {other + "-1", 1}, {cat + "-2", 1}, {cat + "-1", 3}, {other + "-2", 2}, {cat + "-3", 1}, {cat + "-2", 2}}
	var want []eventstore.Event
	versions := map[string]eventstore.Version{}
	for _, w := range plan {
		evs := events(w.n, "E")
		versions[w.stream] = mustAppend(t, s, w.stream, versions[w.stream], evs...)
		if w.stream[:len(cat)] == cat {
			want = append(want, evs...)
		}
	}
	all := readCategoryAll(t, s, cat, len(want))
	if len(all) != len(want) {
		t.Fatalf("category read returned %d events, want %d", len(all), len(want))
	}
	for i := range all {
		sameEvent(t, all[i], want[i])
		if i > 0 && all[i].Position <= all[i-1].Position {
			t.Fatalf("positions not increasing at %d: %d after %d", i, all[i].Position, all[i-1].Position)
		}
	}
	// Resume page by page, including pages that end inside a commit.
	for _, limit := range []int{1, 2, 4} {
		var got []eventstore.Event
		after := eventstore.Start
		for pages := 0; ; pages++ {
			if pages > len(want) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := s.ReadCategory(ctx, cat, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Position
		}
		if len(got) != len(all) {
			t.Fatalf("limit %d: paged read returned %d events, want %d", limit, len(got), len(all))
		}
		for i := range got {
			if got[i].ID != all[i].ID || got[i].Position != all[i].Position {
				t.Fatalf("limit %d: event %d is %s@%d, want %s@%d", limit, i, got[i].ID, got[i].Position, all[i].ID, all[i].Position)
			}
		}
	}
	rest, err := s.ReadCategory(ctx, cat, all[len(all)-1].Position, 0)
	if err != nil || len(rest) != 0 {
		t.Fatalf("read after the last position = %d events, %v; want none", len(rest), err)
	}
}

// subscription runs SubscribeCategory in the background, forwarding events to a channel.
type subscription struct {
	events chan eventstore.Event
	done   chan error
	cancel context.CancelFunc
}

func subscribe(t *testing.T, s eventstore.Store, cat string, after eventstore.Position) *subscription {
	ctx, cancel := context.WithCancel(ctxFor(t))
	sub := &subscription{events: make(chan eventstore.Event, 1024), done: make(chan error, 1), cancel: cancel}
	go func() {
		sub.done <- s.SubscribeCategory(ctx, cat, after, func(ctx context.Context, e eventstore.Event) error {
			select {
			case sub.events <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(cancel)
	return sub
}

func (sub *subscription) next(t *testing.T) eventstore.Event {
	t.Helper()
	select {
	case e := <-sub.events:
		return e
	case err := <-sub.done:
		t.Fatalf("subscription ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return eventstore.Event{}
}

func (sub *subscription) stop(t *testing.T) {
	t.Helper()
	sub.cancel()
	select {
	case err := <-sub.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled subscription returned %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("subscription did not end within 30s of cancel")
	}
}

func expectIDs(t *testing.T, sub *subscription, want []eventstore.Event) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	for i, w := range want {
		got := sub.next(t)
		if got.ID != w.ID {
			t.Fatalf("event %d: got %s (%s v%d), want %s", i, got.ID, got.Stream, got.Version, w.ID)
		}
		if got.Position <= last {
			t.Fatalf("event %d: position %d not after %d", i, got.Position, last)
		}
		sameEvent(t, got, w)
		last = got.Position
	}
	return last
}

func testSubscribe(t *testing.T, s eventstore.Store) {
	cat := Category("sb")
	stored := events(3, "Old")
	mustAppend(t, s, cat+"-1", eventstore.NoStream, stored[:2]...)
	mustAppend(t, s, Category("zz")+"-1", eventstore.NoStream, NewEvent("Elsewhere", ""))
	mustAppend(t, s, cat+"-2", eventstore.NoStream, stored[2])

	sub := subscribe(t, s, cat, eventstore.Start)
	expectIDs(t, sub, stored) // catch-up
	live := events(3, "New")
	mustAppend(t, s, cat+"-1", 2, live[:2]...)
	mustAppend(t, s, cat+"-3", eventstore.NoStream, live[2])
	checkpoint := expectIDs(t, sub, live) // live
	sub.stop(t)

	missed := events(2, "Missed")
	mustAppend(t, s, cat+"-2", 1, missed[0])
	mustAppend(t, s, cat+"-4", eventstore.NoStream, missed[1])
	sub = subscribe(t, s, cat, checkpoint)
	expectIDs(t, sub, missed) // resumed: nothing twice, nothing lost
	after := NewEvent("After", "")
	mustAppend(t, s, cat+"-1", 4, after)
	expectIDs(t, sub, []eventstore.Event{after})

	// Resuming from a checkpoint inside a multi-event commit delivers the rest of it.
	sub.stop(t)
	commit := events(3, "Batch")
	mustAppend(t, s, cat+"-5", eventstore.NoStream, commit...)
	sub = subscribe(t, s, cat, checkpoint)
	mid := expectIDs(t, sub, append(append(missed, after), commit[0]))
	sub.stop(t)
	sub = subscribe(t, s, cat, mid)
	expectIDs(t, sub, commit[1:])
	sub.stop(t)
}

func testSubscribeHandlerError(t *testing.T, s eventstore.Store) {
	cat := Category("he")
	mustAppend(t, s, cat+"-1", eventstore.NoStream, events(3, "E")...)
	boom := errors.New("boom")
	seen := 0
	err := s.SubscribeCategory(ctxFor(t), cat, eventstore.Start, func(ctx context.Context, e eventstore.Event) error {
		seen++
		if seen == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || seen != 2 {
		t.Fatalf("subscription returned %v after %d events; want the handler's error after 2", err, seen)
	}
}

func testAllOrNothing(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	cat := Category("ao")
	stream := cat + "-1"
	mustAppend(t, s, stream, eventstore.NoStream, events(5, "Init")...)
	_, err := s.Append(ctx, stream, 3, events(5, "Rejected")...)
	wantWrongVersion(t, err, stream, 3, 5)
	bad := events(5, "Bad")
	bad[3].Type = ""
	if _, err := s.Append(ctx, stream, 5, bad...); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("append with an invalid event: err = %v, want ErrInvalidEvent", err)
	}
	if got := mustRead(t, s, stream, 1); len(got) != 5 {
		t.Fatalf("failed appends left %d events, want 5", len(got))
	}

	// Readers racing writers of 5-event commits only ever see whole commits.
	const commits, size = 20, 5
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs, err := s.ReadStream(ctx, stream, 1)
				if err == nil && len(evs)%size != 0 {
					err = fmt.Errorf("read saw %d events, not a whole number of commits", len(evs))
				}
				if err == nil {
					var cevs []eventstore.Event
					cevs, err = s.ReadCategory(ctx, cat, eventstore.Start, 0)
					if err == nil && len(cevs)%size != 0 {
						err = fmt.Errorf("category read saw %d events, not a whole number of commits", len(cevs))
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	v := eventstore.Version(5)
	for range commits {
		v = mustAppend(t, s, stream, v, events(size, "Whole")...)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := mustRead(t, s, stream, 1); len(got) != 5+commits*size {
		t.Fatalf("stream holds %d events, want %d", len(got), 5+commits*size)
	}
}

func testLoad(t *testing.T, s eventstore.Store) {
	total, per := 10_000, 10
	if testing.Short() {
		total = 1_000
	}
	stream := Category("ld") + "-big"
	v := eventstore.NoStream
	for i := 0; i < total; i += per {
		evs := make([]eventstore.Event, per)
		for j := range evs {
			evs[j] = NewEvent("Tick", fmt.Sprintf("%d", i+j+1))
		}
		v = mustAppend(t, s, stream, v, evs...)
	}
	if v != eventstore.Version(total) {
		t.Fatalf("final version %d, want %d", v, total)
	}
	got := mustRead(t, s, stream, 1)
	if len(got) != total {
		t.Fatalf("read %d events, want %d", len(got), total)
	}
	for i, e := range got {
		if e.Version != eventstore.Version(i+1) || string(e.Data) != fmt.Sprintf("%d", i+1) {
			t.Fatalf("event %d: version %d data %q", i, e.Version, e.Data)
		}
	}
	tail := mustRead(t, s, stream, eventstore.Version(total-14))
	if len(tail) != 15 || tail[0].Version != eventstore.Version(total-14) {
		t.Fatalf("tail read: %d events from v%d", len(tail), tail[0].Version)
	}
	if cat := readCategoryAll(t, s, stream[:len(stream)-4], total); len(cat) != total {
		t.Fatalf("category read: %d events, want %d", len(cat), total)
	}
}

// readCategoryAll reads a whole category, waiting (bounded) until it holds at least
// want events: some backends (EventStoreDB's $ce projection) index categories
// asynchronously.
func readCategoryAll(t *testing.T, s eventstore.Store, cat string, want int) []eventstore.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs, err := s.ReadCategory(ctxFor(t), cat, eventstore.Start, 0)
		if err != nil {
			t.Fatalf("read category %s: %v", cat, err)
		}
		if len(evs) >= want || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(50 * time.Millisecond)
	}
}
