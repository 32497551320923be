package projection

import "sync"

// Hub tells watchers which orders the read model just changed. The Projector
// publishes the ids of a transaction's orders after it commits (WithHub), so a
// watcher that re-reads the row on a notification sees the committed change; no one
// polls the database.
//
// A notification carries no state, only "order id changed, read it again", so each
// subscription buffers at most one: further notifications while one is pending are
// coalesced into it. Publishing never blocks, however slowly a watcher reads.
//
// A Hub is per process: it hears only the projector running in the same process, so
// WatchOrder must be served where the projector runs (as the order service does).
// A Hub is safe for concurrent use; the zero value is not usable, call NewHub.
type Hub struct {
	mu     sync.Mutex
	subs   map[string]map[*Subscription]struct{}
	closed bool
}

// Subscription receives a value on C each time its order may have changed since the
// last receive. C is closed when the subscription or its Hub is closed.
type Subscription struct {
	// C has a buffer of one: a pending notification stands for any number of changes.
	C <-chan struct{}

	c       chan struct{}
	hub     *Hub
	orderID string
	once    sync.Once
}

// NewHub returns a hub without subscriptions.
func NewHub() *Hub {
	return &Hub{subs: map[string]map[*Subscription]struct{}{}}
}

// Subscribe returns a subscription to changes of orderID; the caller must Close it.
// Subscribe before reading the order's row: a change committed between the read and
// the subscription would otherwise go unnoticed. On a closed hub the subscription's
// channel is already closed.
func (h *Hub) Subscribe(orderID string) *Subscription {
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, hub: h, orderID: orderID}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.once.Do(func() { close(c) })
		return s
	}
	m := h.subs[orderID]
	if m == nil {
		m = map[*Subscription]struct{}{}
		h.subs[orderID] = m
	}
	m[s] = struct{}{}
	return s
}

// Close ends the subscription and closes C; closing twice is harmless.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.orderID]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.orderID)
		}
	}
	s.once.Do(func() { close(s.c) })
}

// Publish notifies the subscribers of each of orderIDs. It never blocks: a
// subscriber with a notification pending keeps that one.
func (h *Hub) Publish(orderIDs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range orderIDs {
		for s := range h.subs[id] {
			notify(s.c)
		}
	}
}

// PublishAll notifies every subscriber, for a change that may touch any order (the
// tables a Rebuild swapped in).
func (h *Hub) PublishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.subs {
		for s := range m {
			notify(s.c)
		}
	}
}

// Close closes every subscription, present and future, so that watchers end (at
// shutdown, rather than holding the server's drain).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, m := range h.subs {
		for s := range m {
			s.once.Do(func() { close(s.c) })
		}
		delete(h.subs, id)
	}
}

// Watchers returns the number of open subscriptions.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}

// notify leaves a notification in c unless one is pending already.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
