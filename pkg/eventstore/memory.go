package eventstore

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

var _ Store = (*Memory)(nil)

// Memory is an in-process Store for unit tests and tools. It keeps everything in
// memory, remembers every append's first event ID forever (idempotence has no window)
// and numbers positions with one counter shared by all categories.
type Memory struct {
	mu         sync.Mutex
	now        func() time.Time
	streams    map[string][]Event
	commits    map[string]map[string]Version // stream -> first event id -> version after that commit
	categories map[string][]Event
	next       Position
	changed    chan struct{} // closed and replaced on every append
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithClock sets the clock used to stamp events appended without a Time, so tests with
// a fake clock get deterministic event times.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) { m.now = now }
}

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		now:        time.Now,
		streams:    map[string][]Event{},
		commits:    map[string]map[string]Version{},
		categories: map[string][]Event{},
		changed:    make(chan struct{}),
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Append implements Store.Append; it returns the errors documented there.
func (m *Memory) Append(ctx context.Context, stream string, expected Version, events ...Event) (Version, error) {
	category, _, err := ParseStream(stream)
	if err != nil {
		return 0, err
	}
	evs, err := PrepareAppend(events, m.now())
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.commits[stream][evs[0].ID]; ok {
		return v, nil
	}
	actual := Version(len(m.streams[stream]))
	if expected != Any && expected != actual {
		return 0, &WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	for i := range evs {
		m.next++
		evs[i].Stream = stream
		evs[i].Version = actual + Version(i) + 1
		evs[i].Position = m.next
		evs[i].Metadata = maps.Clone(evs[i].Metadata)
		evs[i].Data = append([]byte(nil), evs[i].Data...)
	}
	m.streams[stream] = append(m.streams[stream], evs...)
	m.categories[category] = append(m.categories[category], evs...)
	last := actual + Version(len(evs))
	if m.commits[stream] == nil {
		m.commits[stream] = map[string]Version{}
	}
	m.commits[stream][evs[0].ID] = last
	close(m.changed)
	m.changed = make(chan struct{})
	return last, nil
}

// ReadStream implements Store.ReadStream; it returns the errors documented there.
func (m *Memory) ReadStream(ctx context.Context, stream string, from Version) ([]Event, error) {
	if _, _, err := ParseStream(stream); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := m.streams[stream]
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, stream)
	}
	if from == 0 {
		from = 1
	}
	if from > Version(len(evs)) {
		return nil, nil
	}
	return cloneEvents(evs[from-1:]), nil
}

// ReadCategory implements Store.ReadCategory; it returns the errors documented there.
func (m *Memory) ReadCategory(ctx context.Context, category string, after Position, limit int) ([]Event, error) {
	if err := ValidateCategory(category); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	evs, _ := m.after(category, after, limit)
	return evs, nil
}

// after returns category events after pos; the caller holds m.mu.
func (m *Memory) after(category string, pos Position, limit int) ([]Event, <-chan struct{}) {
	all := m.categories[category]
	// Positions ascend within a category, so the first event after pos is found by bisection.
	lo, hi := 0, len(all)
	for lo < hi {
		mid := (lo + hi) / 2
		if all[mid].Position <= pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	all = all[lo:]
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return cloneEvents(all), m.changed
}

// SubscribeCategory implements Store.SubscribeCategory; it returns the errors
// documented there.
func (m *Memory) SubscribeCategory(ctx context.Context, category string, after Position, h Handler) error {
	if err := ValidateCategory(category); err != nil {
		return err
	}
	for {
		m.mu.Lock()
		evs, changed := m.after(category, after, 512)
		m.mu.Unlock()
		for _, e := range evs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := handle(ctx, h, e); err != nil {
				return err
			}
			after = e.Position
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func cloneEvents(evs []Event) []Event {
	out := make([]Event, len(evs))
	for i, e := range evs {
		e.Metadata = maps.Clone(e.Metadata)
		e.Data = append([]byte(nil), e.Data...)
		out[i] = e
	}
	return out
}
