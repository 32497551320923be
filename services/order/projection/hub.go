package projection

import (
	"sync"

	"google.golang.org/protobuf/proto"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

// Hub tells watchers what the read model just committed. The Projector publishes
// each transaction's changes of order rows after it commits (WithHub), so a watcher
// holding an order's row can bring it up to date without reading the database
// again, and one that cannot (it holds no row, missed a change, or was told of a
// change without its content) re-reads the committed row. No one polls.
//
// Publishing never blocks, however slowly a watcher reads: each subscription keeps
// at most maxPending changes and, past that, forgets them and asks for a re-read.
//
// A Hub is per process: it hears only the projector running in the same process,
// or a relay of other instances' projectors (which carries order ids, not changes:
// their watchers re-read). WatchOrder must be served where one of the two feeds it.
// A Hub is safe for concurrent use; the zero value is not usable, call NewHub.
type Hub struct {
	mu     sync.Mutex
	subs   map[string]map[*Subscription]struct{}
	closed bool
}

// maxPending bounds the changes a subscription keeps for a watcher that has not
// taken them: an order has about a dozen in its life, so only a stalled watcher
// reaches it, and it re-reads the row instead.
const maxPending = 64

// Change is one committed update of an order's row: it moved the row from version
// From to version To; the row's insertion has From zero. A change that Apply cannot
// replay (a correction of an earlier partial apply) has To zero: watchers re-read.
type Change struct {
	OrderID  string
	From, To int64
	// Shown reports whether the change touches what the order shows, not only its
	// version (a step of its saga).
	Shown bool
	// at is the row's new updated_at, as stored; set, the columns assigned besides
	// version and updated_at; row, for an insertion, the new row.
	at  int64
	set []assignment
	row func() *orderv1.Order
}

// Apply returns o, which must be at version c.From (nil before the insertion),
// with c applied, as a new message (o is left as it was: a sent message must not
// change). ok is false when o is at another version or c cannot be replayed;
// re-read the row then.
func (c Change) Apply(o *orderv1.Order) (next *orderv1.Order, ok bool) {
	switch {
	case c.row != nil && o == nil:
		return c.row(), true
	case c.To == 0 || c.row != nil || o == nil || o.GetVersion() != c.From:
		return nil, false
	}
	next = proto.CloneOf(o)
	for _, a := range c.set {
		a.apply(next)
	}
	next.Version = c.To
	next.UpdateTime = rowTime(c.at)
	return next, true
}

// Subscription receives a value on C each time changes of its order wait in Take.
// C is closed when the subscription or its Hub is closed.
type Subscription struct {
	// C has a buffer of one: a pending value stands for any number of changes.
	C <-chan struct{}

	c       chan struct{}
	hub     *Hub
	orderID string
	once    sync.Once

	// Guarded by hub.mu.
	pending []Change
	reread  bool
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

// Take returns the changes published since the last Take, oldest first, and
// whether the row must be read again instead (some were not kept, or came
// without their content).
func (s *Subscription) Take() (changes []Change, reread bool) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	changes, reread = s.pending, s.reread
	s.pending, s.reread = nil, false
	return changes, reread
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

// Publish hands each change to the subscribers of its order, in order. It never
// blocks.
func (h *Hub) Publish(changes ...Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range changes {
		for s := range h.subs[c.OrderID] {
			if s.reread || c.To == 0 || len(s.pending) == maxPending {
				s.askReread()
				continue
			}
			s.pending = append(s.pending, c)
			notify(s.c)
		}
	}
}

// Notify tells the subscribers of each of orderIDs to re-read their order: the
// orders changed, by what is not known here (the relay of another instance's
// projector).
func (h *Hub) Notify(orderIDs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range orderIDs {
		for s := range h.subs[id] {
			s.askReread()
		}
	}
}

// PublishAll tells every subscriber to re-read, for a change that may touch any
// order (the tables a Rebuild swapped in).
func (h *Hub) PublishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.subs {
		for s := range m {
			s.askReread()
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

// askReread drops s's pending changes and tells its watcher to read the row again.
// The caller holds the hub's lock.
func (s *Subscription) askReread() {
	s.pending, s.reread = nil, true
	notify(s.c)
}

// notify leaves a notification in c unless one is pending already.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
