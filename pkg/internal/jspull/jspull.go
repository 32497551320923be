// Package jspull reads JetStream pull consumers with an iterator that cannot fall
// silent while the server holds messages for it. The messaging consumers and the
// event store's category reads use it.
//
// nats.go (v1.56) decides whether to send the next pull request when
// MessagesContext.Next starts waiting, and skips it while its previous request is
// still being published. When the messages of that previous request arrive and are
// all taken before its publishing goroutine runs again, which a process short of
// CPU does, the last Next waits with nothing requested: the server holds the
// messages and no request, and only the heartbeat found missing after twice the
// heartbeat interval (30 s for a durable consumer's default, 10 s for an ordered
// one's) makes the iterator pull again. The saga benchmark at 64 buyers showed it
// as every order in flight finishing 30 s late in about one run of fifty, with the
// replies consumer at "64 pending, 0 waiting" on the server (BENCHMARKS.md, fifth
// round).
//
// So each wait lasts at most a short period and starts again, which sends a
// skipped request at the latest then. Bounded waits also keep the library's
// missing-heartbeat check from ever firing (each Next arms it anew), so an iterator
// that receives nothing for an idle period is replaced by a new one: a pull request
// the server dropped without a word cannot leave it waiting for good either. An idle
// reader pays a wake-up per period and a new iterator per idle period.
package jspull

import (
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RepullEvery is the longest one wait for a message lasts.
const RepullEvery = 100 * time.Millisecond

// Idle periods after which an iterator is replaced: the library's own
// missing-heartbeat time with its default heartbeat for each kind of consumer.
const (
	DurableIdle = 30 * time.Second
	OrderedIdle = 10 * time.Second
)

// Iterator reads messages through a jetstream.MessagesContext it replaces when it
// has been idle too long. Next must be called from one goroutine at a time; Stop
// from any.
type Iterator struct {
	open func() (jetstream.MessagesContext, error)
	wait time.Duration
	idle time.Duration

	mu      sync.Mutex
	it      jetstream.MessagesContext
	stopped bool
}

// New opens an Iterator. open returns a new MessagesContext each time it is called:
// for a durable consumer, consumer.Messages; for an ordered one, a new ordered
// consumer from after the last message read (an ordered consumer's Messages cannot
// be called twice). It is called from Next, in Next's goroutine, after the
// previous MessagesContext was stopped. idle is DurableIdle or OrderedIdle.
func New(idle time.Duration, open func() (jetstream.MessagesContext, error)) (*Iterator, error) {
	it, err := open()
	if err != nil {
		return nil, err
	}
	return &Iterator{open: open, wait: RepullEvery, idle: idle, it: it}, nil
}

// SetPeriods changes the wait and idle periods, for tests.
func (p *Iterator) SetPeriods(wait, idle time.Duration) { p.wait, p.idle = wait, idle }

// Next returns the next message, or the MessagesContext's error:
// jetstream.ErrMsgIteratorClosed after Stop, a connection error, or a missing
// heartbeat the library reports.
func (p *Iterator) Next() (jetstream.Msg, error) {
	var idle time.Duration
	for {
		p.mu.Lock()
		it := p.it
		p.mu.Unlock()
		msg, err := it.Next(jetstream.NextMaxWait(p.wait))
		if !errors.Is(err, nats.ErrTimeout) {
			return msg, err
		}
		if idle += p.wait; idle < p.idle {
			continue
		}
		idle = 0
		if err := p.renew(); err != nil {
			return nil, err
		}
	}
}

// renew replaces the MessagesContext with a new one, unless the Iterator is stopped.
func (p *Iterator) renew() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return jetstream.ErrMsgIteratorClosed
	}
	// Stop discards what the old one had buffered; after an idle period with
	// nothing delivered that is at most a message arriving this instant: a durable
	// consumer's server delivers it again after AckWait, an ordered consumer's
	// replacement starts after the last message read.
	p.it.Stop()
	it, err := p.open()
	if err != nil {
		return err
	}
	p.it = it
	return nil
}

// Stop ends the Iterator: a Next waiting now and every later one returns
// jetstream.ErrMsgIteratorClosed. Safe to call more than once.
func (p *Iterator) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.it.Stop()
}
