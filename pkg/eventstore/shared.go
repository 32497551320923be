package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Shared is a Store whose category subscriptions share one subscription of the
// store beneath: however many readers of a category a process runs (the order
// service runs three: its read-model projector, its saga follower and its saga
// orchestrator), each event is fetched from the server and decoded once. On
// JetStream that is one ordered consumer and one delivery per event instead of one
// per reader, which is most of what a reader costs.
//
// Each SubscribeCategory keeps the Store contract: every event after its checkpoint,
// in order, no gap, no duplicate, its handler called one event at a time. A reader
// that starts behind the shared subscription reads what it lacks with ReadCategory,
// then takes the shared events that arrived meanwhile. No reader holds another back:
// one that falls more than the queue (WithSharedQueue) behind is detached, reads
// its way back alone and joins again. The shared subscription starts with its first
// reader and stops when its last one leaves; if it fails, each reader's
// SubscribeCategory returns the error, as a subscription of its own would.
//
// Readers receive the same Event values: a handler must not modify an event's
// Metadata or Data. The other methods are the Store's own.
type Shared struct {
	Store
	queue int
	page  int

	mu    sync.Mutex
	feeds map[string]*feed // running shared subscriptions by category
}

// SharedOption configures NewShared.
type SharedOption func(*Shared)

// DefaultSharedQueue is how many events may wait for one reader before it is
// detached: about three seconds of the order category at full load.
const DefaultSharedQueue = 4096

// WithSharedQueue sets how many events may wait for one reader before it is
// detached to catch up on its own (default DefaultSharedQueue).
func WithSharedQueue(n int) SharedOption {
	return func(s *Shared) {
		if n > 0 {
			s.queue = n
		}
	}
}

// NewShared returns s with its category subscriptions shared.
func NewShared(s Store, opts ...SharedOption) *Shared {
	sh := &Shared{Store: s, queue: DefaultSharedQueue, page: 512, feeds: map[string]*feed{}}
	for _, o := range opts {
		o(sh)
	}
	return sh
}

// feed is one shared subscription. Its fields are guarded by Shared.mu.
type feed struct {
	cancel context.CancelFunc
	// last is the position of the last event handed to the readers: a reader
	// joining now gets every later one.
	last    Position
	readers map[*reader]struct{}
}

// reader is one SubscribeCategory on a feed. Its fields are guarded by Shared.mu.
type reader struct {
	feed     *feed
	queue    []Event
	wake     chan struct{} // buffer of one: something was queued or happened
	detached bool          // fell too far behind: catch up alone, then join again
	err      error         // the shared subscription ended with it
}

// errDetached makes a reader catch up on its own and join again.
var errDetached = errors.New("eventstore: reader fell behind the shared subscription")

// SubscribeCategory implements Store.SubscribeCategory over the shared subscription
// of category.
func (s *Shared) SubscribeCategory(ctx context.Context, category string, after Position, h Handler) error {
	if err := ValidateCategory(category); err != nil {
		return err
	}
	pos := after
	for {
		r, behind := s.join(category, pos)
		err := s.catchUp(ctx, category, &pos, behind, h)
		if err == nil {
			err = s.follow(ctx, r, &pos, h)
		}
		if errors.Is(err, errDetached) {
			continue
		}
		s.leave(category, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
}

// join adds a reader at pos to the category's feed, starting the feed there if
// none runs. The reader's queue receives every event after the returned position;
// those from pos up to it, it must read itself.
func (s *Shared) join(category string, pos Position) (*reader, Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[category]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed{cancel: cancel, last: pos, readers: map[*reader]struct{}{}}
		s.feeds[category] = f
		go s.run(ctx, category, f, pos)
	}
	r := &reader{feed: f, wake: make(chan struct{}, 1)}
	f.readers[r] = struct{}{}
	return r, f.last
}

// leave takes r off its feed and stops the feed when no reader is left.
func (s *Shared) leave(category string, r *reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.feed
	delete(f.readers, r)
	if len(f.readers) == 0 {
		f.cancel()
		if s.feeds[category] == f {
			delete(s.feeds, category)
		}
	}
}

// run is the shared subscription: it queues each event for every reader. It never
// waits for a reader; one whose queue is full is detached instead.
func (s *Shared) run(ctx context.Context, category string, f *feed, from Position) {
	err := s.Store.SubscribeCategory(ctx, category, from, func(_ context.Context, e Event) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		f.last = e.Position
		for r := range f.readers {
			if len(r.queue) >= s.queue {
				r.detached = true
				delete(f.readers, r)
			} else {
				r.queue = append(r.queue, e)
			}
			wake(r.wake)
		}
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feeds[category] == f {
		delete(s.feeds, category)
	}
	if ctx.Err() != nil {
		return // stopped by leave: no reader is left
	}
	for r := range f.readers {
		r.err = fmt.Errorf("eventstore: shared subscription to %s: %w", category, err)
		wake(r.wake)
	}
	f.readers = map[*reader]struct{}{}
	f.cancel()
}

// catchUp hands h the stored events after *pos up to through, moving *pos along.
func (s *Shared) catchUp(ctx context.Context, category string, pos *Position, through Position, h Handler) error {
	for *pos < through {
		evs, err := s.Store.ReadCategory(ctx, category, *pos, s.page)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil // nothing stored up to through: the queue has the rest
		}
		for _, e := range evs {
			if e.Position > through {
				return nil
			}
			if err := handle(ctx, h, e); err != nil {
				return err
			}
			*pos = e.Position
		}
	}
	return nil
}

// follow hands h the events queued for r until ctx ends, h fails, the feed fails
// or r is detached (errDetached, after the events queued before it).
func (s *Shared) follow(ctx context.Context, r *reader, pos *Position, h Handler) error {
	for {
		s.mu.Lock()
		queued, detached, err := r.queue, r.detached, r.err
		r.queue = nil
		s.mu.Unlock()
		for _, e := range queued {
			if e.Position <= *pos {
				continue // the feed started before this reader
			}
			if err := handle(ctx, h, e); err != nil {
				return err
			}
			*pos = e.Position
		}
		switch {
		case len(queued) > 0:
			continue
		case detached:
			return errDetached
		case err != nil:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		}
	}
}

// wake leaves a signal in c unless one is pending.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
