package projection

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of an OrderCache.
const (
	// DefaultOrderCacheSize is how many orders an OrderCache holds: the orders
	// being watched and polled at once in a busy shop, well under a MB each 1,000.
	DefaultOrderCacheSize = 4096
	// DefaultOrderCacheTTL bounds how long an order is answered from memory: the
	// staleness left where the tables change without the projector telling the
	// cache (a Rebuild swapping its tables in, from this process or another one).
	DefaultOrderCacheTTL = 2 * time.Second
)

// cacheShards splits an OrderCache so that concurrent reads of different orders
// rarely wait on one lock.
const cacheShards = 32

// OrderCache keeps the order rows GetOrder read last, decoded, so that reading a hot
// order again (a buyer's status page, a client polling, a watch opening) costs no
// SQL query, no row scan and no JSON decoding: in the read-path benchmark those were
// 18 % of the process's CPU and an eighth of its allocations. Each answer is still a
// fresh *orderv1.Order, so a caller may change what it gets.
//
// It is exact only where every write to the orders table comes from a projector that
// tells it (Notifier): a SQLite read model, which is one instance's own. Every
// change a projector commits forgets the orders it touched before watchers hear of
// it, and a read that raced with such a change is not kept (see orderShard.epoch),
// so GetOrder never answers an order older than the last change committed and told.
// What no projector tells, a Rebuild's tables swapped in, is seen within the TTL.
// Where instances share a PostgreSQL read model, the others' writes reach this one
// only through the relay, which may lag or drop; the order service uses no cache
// there.
//
// An OrderCache is safe for concurrent use.
type OrderCache struct {
	ttl    time.Duration
	now    func() time.Time
	seed   maphash.Seed
	shards [cacheShards]orderShard
}

type orderShard struct {
	mu sync.Mutex
	// epoch moves each time an order of the shard is forgotten. A read remembers
	// the epoch from before it went to the database and keeps its row only if the
	// epoch has not moved since: a row read before a change committed, but kept
	// after the change was told, would otherwise stay behind it.
	epoch   uint64
	entries *simplelru.LRU[string, cachedRow]
}

type cachedRow struct {
	row   *orderRow // never changed once cached
	until time.Time
}

// NewOrderCache returns a cache of at most size orders (DefaultOrderCacheSize if
// size <= 0), each answered for at most ttl (DefaultOrderCacheTTL if ttl <= 0)
// after it was read.
func NewOrderCache(size int, ttl time.Duration) *OrderCache {
	if size <= 0 {
		size = DefaultOrderCacheSize
	}
	if ttl <= 0 {
		ttl = DefaultOrderCacheTTL
	}
	c := &OrderCache{ttl: ttl, now: time.Now, seed: maphash.MakeSeed()}
	per := max(1, (size+cacheShards-1)/cacheShards)
	for i := range c.shards {
		c.shards[i].entries, _ = simplelru.NewLRU[string, cachedRow](per, nil) // errs only for a size below 1
	}
	return c
}

func (c *OrderCache) shard(id string) *orderShard {
	return &c.shards[maphash.String(c.seed, id)%cacheShards]
}

// get returns the cached row of order id, or, on a miss, the shard's epoch to hand
// to put with the row read instead.
func (c *OrderCache) get(id string) (row *orderRow, epoch uint64) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries.Get(id)
	if ok && c.now().Before(e.until) {
		return e.row, 0
	}
	if ok {
		s.entries.Remove(id)
	}
	return nil, s.epoch
}

// put keeps row, read from the database after get returned epoch, unless an order
// of its shard was forgotten in between.
func (c *OrderCache) put(row *orderRow, epoch uint64) {
	s := c.shard(row.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return
	}
	s.entries.Add(row.id, cachedRow{row: row, until: c.now().Add(c.ttl)})
}

// forget drops order id.
func (c *OrderCache) forget(id string) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	s.entries.Remove(id)
}

// forgetAll drops every order.
func (c *OrderCache) forgetAll() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.epoch++
		s.entries.Purge()
		s.mu.Unlock()
	}
}

// Len returns the number of orders cached, stale ones included until they are read.
func (c *OrderCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.entries.Len()
		s.mu.Unlock()
	}
	return n
}

// Notifier returns the Notifier to hand the projector (WithHub): it forgets the
// orders of each committed change, then tells next (nil for no one else), so that a
// watcher that re-reads on next's word reads the change.
func (c *OrderCache) Notifier(next Notifier) Notifier { return cacheNotifier{c, next} }

type cacheNotifier struct {
	c    *OrderCache
	next Notifier
}

func (n cacheNotifier) Publish(changes ...Change) {
	for _, ch := range changes {
		n.c.forget(ch.OrderID)
	}
	if n.next != nil {
		n.next.Publish(changes...)
	}
}

func (n cacheNotifier) PublishAll() {
	n.c.forgetAll()
	if n.next != nil {
		n.next.PublishAll()
	}
}
