package messaging

import (
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bounds of a puller's waits, unless a test sets others.
const (
	// repullEvery bounds one wait for a message; a wait that ends and starts again
	// makes the iterator look again at whether it owes the server a pull request.
	repullEvery = 100 * time.Millisecond
	// restartIdle is how long a puller may go without a message before it replaces
	// its iterator: twice the heartbeat nats.go uses with its default 30 s expiry,
	// the same time after which the library itself would have pulled again.
	restartIdle = 30 * time.Second
)

// puller reads a durable consumer's messages with a jetstream.MessagesContext that
// cannot fall silent while the server holds messages for it.
//
// nats.go (v1.56) decides whether to send the next pull request when Next starts
// waiting, and skips it while its previous request is still being published. When
// the messages of that previous request arrive and are all taken before its
// publishing goroutine runs again, which a process short of CPU does, the last Next
// waits with nothing requested: the server holds the messages and no request, and
// only the heartbeat found missing after 30 s makes the iterator pull again. The
// saga benchmark at 64 buyers showed it as every order in flight finishing 30 s
// late in about one run of forty, with the replies consumer at "64 pending, 0
// waiting" (SHOP_BENCH_SLOW=5s prints the consumers' state when it happens).
//
// So each wait lasts at most repullEvery and starts again, which sends a skipped
// request at the latest then. Bounded waits also keep the library's missing-
// heartbeat check from ever firing (it is armed anew by each Next), so a puller
// that receives nothing for restartIdle replaces its iterator: a pull request the
// server dropped without a word cannot leave it waiting for good either. An idle
// consumer pays a wake-up per repullEvery and a new iterator per restartIdle.
type puller struct {
	cons    jetstream.Consumer
	opts    []jetstream.PullMessagesOpt
	wait    time.Duration // repullEvery
	restart time.Duration // restartIdle

	mu      sync.Mutex
	it      jetstream.MessagesContext
	stopped bool
}

func newPuller(cons jetstream.Consumer, opts ...jetstream.PullMessagesOpt) (*puller, error) {
	it, err := cons.Messages(opts...)
	if err != nil {
		return nil, err
	}
	return &puller{cons: cons, opts: opts, wait: repullEvery, restart: restartIdle, it: it}, nil
}

// Next returns the next message, or the iterator's error: jetstream.ErrMsgIteratorClosed
// after Stop, a connection error, or a missing heartbeat reported by the library.
func (p *puller) Next() (jetstream.Msg, error) {
	var idle time.Duration
	for {
		p.mu.Lock()
		it := p.it
		p.mu.Unlock()
		msg, err := it.Next(jetstream.NextMaxWait(p.wait))
		if !errors.Is(err, nats.ErrTimeout) {
			return msg, err
		}
		if idle += p.wait; idle < p.restart {
			continue
		}
		idle = 0
		if err := p.renew(); err != nil {
			return nil, err
		}
	}
}

// renew replaces the iterator with a new one, unless the puller is stopped.
func (p *puller) renew() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return jetstream.ErrMsgIteratorClosed
	}
	// Stop discards what the old iterator had buffered; after a wait of
	// restartIdle with nothing delivered that is at most a message arriving this
	// instant, which the server delivers again after the consumer's AckWait.
	p.it.Stop()
	it, err := p.cons.Messages(p.opts...)
	if err != nil {
		return err
	}
	p.it = it
	return nil
}

// Stop ends the puller: a Next waiting now and every later one returns
// jetstream.ErrMsgIteratorClosed. Safe to call more than once and from any goroutine.
func (p *puller) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.it.Stop()
}
