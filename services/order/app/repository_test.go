package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

func TestSnapshotLoadEqualsFullReplay(t *testing.T) {
	store, snaps, _ := jetStreamEnv(t)
	ctx := t.Context()
	paths := map[string]func(id, user string) []step{"happy": happyPath, "cancel": cancelPath}
	for every := 1; every <= 4; every++ {
		repo := app.NewRepository(store, app.WithSnapshots(snaps, every))
		for name, path := range paths {
			full := path("x", "alice")
			for n := 1; n <= len(full); n++ {
				t.Run(fmt.Sprintf("every=%d/%s/%d-events", every, name, n), func(t *testing.T) {
					id := newID(t)
					run(t, ctx, repo, id, path(id, "alice")[:n])

					_, stored, err := snaps.Get(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if want := n >= every; stored != want {
						t.Fatalf("snapshot stored = %v after %d events with every=%d, want %v", stored, n, every, want)
					}
					withSnap, err := repo.Load(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					without, err := repo.LoadWithoutSnapshot(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					history, err := repo.History(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					events := make([]domain.Event, len(history))
					for i, h := range history {
						events[i] = h.Event
					}
					folded, err := domain.Rehydrate(events)
					if err != nil {
						t.Fatal(err)
					}
					if withSnap.Version() != int64(n) {
						t.Errorf("version = %d, want %d", withSnap.Version(), n)
					}
					if !reflect.DeepEqual(withSnap.Snapshot(), without.Snapshot()) || !reflect.DeepEqual(withSnap.Snapshot(), folded.Snapshot()) {
						t.Errorf("states differ:\nsnapshot+tail %+v\nfull replay   %+v\nrehydrate     %+v", withSnap.Snapshot(), without.Snapshot(), folded.Snapshot())
					}
				})
			}
		}
	}
}

// storedSnapshot is the layout the repository writes, reproduced so the test can
// forge snapshots.
type storedSnapshot struct {
	Schema int             `json:"schema"`
	Order  domain.Snapshot `json:"order"`
}

func TestSnapshotIsUsedAndUnknownSchemaIgnored(t *testing.T) {
	store, snaps, _ := jetStreamEnv(t)
	ctx := t.Context()
	repo := app.NewRepository(store, app.WithSnapshots(snaps, 2))
	id := newID(t)
	run(t, ctx, repo, id, happyPath(id, "alice")[:3])

	truth, err := repo.LoadWithoutSnapshot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(schema int) {
		s := truth.Snapshot()
		s.Lines[0].Name = "forged"
		data, err := json.Marshal(storedSnapshot{Schema: schema, Order: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := snaps.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
	}

	// A snapshot of the current schema is trusted: the forged name shows it was read.
	forge(app.SnapshotSchemaVersion)
	o, err := repo.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Lines()[0].Name; got != "forged" {
		t.Fatalf("line name = %q: the snapshot was not used", got)
	}

	for name, corrupt := range map[string]func(t *testing.T){
		"unknown schema": func(*testing.T) { forge(app.SnapshotSchemaVersion + 1) },
		"undecodable": func(t *testing.T) {
			if err := snaps.Put(ctx, id, []byte("{not json")); err != nil {
				t.Fatal(err)
			}
		},
		"invalid state": func(t *testing.T) {
			s := truth.Snapshot()
			s.Version = 0
			data, err := json.Marshal(storedSnapshot{Schema: app.SnapshotSchemaVersion, Order: s})
			if err != nil {
				t.Fatal(err)
			}
			if err := snaps.Put(ctx, id, data); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			corrupt(t)
			o, err := repo.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Snapshot(), truth.Snapshot()) {
				t.Errorf("loaded %+v, want the replayed %+v", o.Snapshot(), truth.Snapshot())
			}
		})
	}
}

func TestLoadUnknownOrder(t *testing.T) {
	store, snaps, _ := jetStreamEnv(t)
	repo := app.NewRepository(store, app.WithSnapshots(snaps, 1))
	if _, err := repo.Load(t.Context(), newID(t)); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("Load = %v, want ErrNotFound", err)
	}
	if _, err := repo.History(t.Context(), newID(t)); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("History = %v, want ErrNotFound", err)
	}
}

// conflictCounter counts appends that lost an optimistic-concurrency race.
type conflictCounter struct {
	eventstore.Store
	conflicts atomic.Int64
}

func (c *conflictCounter) Append(ctx context.Context, stream string, expected eventstore.Version, evs ...eventstore.Event) (eventstore.Version, error) {
	v, err := c.Store.Append(ctx, stream, expected, evs...)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		c.conflicts.Add(1)
	}
	return v, err
}

func TestConcurrentStepsLoseNoEventAndDuplicateNone(t *testing.T) {
	store, _, _ := jetStreamEnv(t)
	counted := &conflictCounter{Store: store}
	ctx := t.Context()
	repo := app.NewRepository(counted, app.WithMaxAttempts(20))
	id := newID(t)
	path := happyPath(id, "alice")
	run(t, ctx, repo, id, path[:1])

	// Every worker drives the same saga steps, as redelivered saga replies would.
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for i, s := range path[1:] {
				if _, err := repo.Update(ctx, id, s); err != nil {
					errs <- fmt.Errorf("step %d: %w", i+2, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	history, err := repo.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != len(path) {
		t.Fatalf("%d events stored, want exactly %d (one per step)", len(history), len(path))
	}
	for i, h := range history {
		if h.Version != int64(i+1) {
			t.Errorf("event %d has version %d", i, h.Version)
		}
	}
	o, err := repo.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if o.State() != domain.StateCompleted {
		t.Errorf("state = %s, want COMPLETED", o.State())
	}
	t.Logf("%d optimistic-concurrency conflicts resolved by retrying", counted.conflicts.Load())
}

func TestConcurrentCancelAndAuthorize(t *testing.T) {
	store, _, _ := jetStreamEnv(t)
	ctx := t.Context()
	repo := app.NewRepository(store, app.WithMaxAttempts(20))
	id := newID(t)
	run(t, ctx, repo, id, happyPath(id, "alice")[:1])

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = repo.Update(ctx, id, func(o *domain.Order) ([]domain.Event, error) {
					return o.RecordPaymentAuthorized("pay-1", o.Total())
				})
			} else {
				_, err = repo.Update(ctx, id, func(o *domain.Order) ([]domain.Event, error) {
					return o.CancelByUser("alice", "")
				})
			}
			// Authorizing an order already cancelling is refused; nothing else may fail.
			if err != nil && !(i%2 == 0 && errors.Is(err, domain.ErrIllegalTransition)) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	history, err := repo.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, h := range history {
		count[domain.EventType(h.Event)]++
	}
	if count["eventshop.order.v1.OrderCancelling"] != 1 || count["eventshop.order.v1.OrderPaymentAuthorized"] > 1 || len(history) > 3 {
		t.Fatalf("history %v: want one cancellation and at most one authorization", count)
	}
	o, err := repo.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if o.State() != domain.StateCancelling || !o.CancelRequestedByUser() {
		t.Errorf("state = %s by user %v, want CANCELLING by the user", o.State(), o.CancelRequestedByUser())
	}
}

// alwaysConflicting pretends another writer appended before every append.
type alwaysConflicting struct {
	eventstore.Store
	appends atomic.Int64
}

func (a *alwaysConflicting) Append(_ context.Context, stream string, expected eventstore.Version, _ ...eventstore.Event) (eventstore.Version, error) {
	a.appends.Add(1)
	return 0, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: expected + 1}
}

func TestUpdateGivesUpAfterBoundedAttempts(t *testing.T) {
	store := &alwaysConflicting{Store: eventstore.NewMemory()}
	repo := app.NewRepository(store)
	id := newID(t)
	_, err := repo.Update(t.Context(), id, func(o *domain.Order) ([]domain.Event, error) {
		return o.Place(placeParams(id, "alice"))
	})
	if !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("Update = %v, want ErrConcurrency", err)
	}
	if got := store.appends.Load(); got != app.DefaultMaxAttempts {
		t.Errorf("%d appends, want %d", got, app.DefaultMaxAttempts)
	}
}

func TestUpdateReturnsDecisionErrorAndAppendsNothing(t *testing.T) {
	store := eventstore.NewMemory()
	repo := app.NewRepository(store)
	id := newID(t)
	boom := errors.New("no")
	if _, err := repo.Update(t.Context(), id, func(*domain.Order) ([]domain.Event, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the decision's error", err)
	}
	if _, err := store.ReadStream(t.Context(), app.StreamName(id), 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("stream after a refused decision: %v", err)
	}
}
