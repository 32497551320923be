// Package sagatest holds test doubles for pkg/saga: a fake Clock that moves only when
// told, and an in-memory Transport that records the commands sent.
package sagatest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/eventshop/eventshop/pkg/saga"
)

// Clock is a saga.Clock whose time moves only by Advance. Timers fire when the time
// passes their deadline. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

var _ saga.Clock = (*Clock)(nil)

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer firing once the clock reaches now+d (at once if d <= 0).
func (c *Clock) NewTimer(d time.Duration) saga.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d and fires the timers that became due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.ch <- c.now
		return true
	})
}

// Timers is the number of timers waiting to fire; a test can wait for a component
// to be waiting before advancing the clock.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *timer) bool { return x == t })
	return len(t.c.timers) < n
}

// Transport is a saga.Transport that records every command. OnSend, if set, runs for
// each command (e.g. a scripted participant) and its error is Send's error; the
// command is recorded either way. It is safe for concurrent use.
type Transport struct {
	OnSend func(ctx context.Context, c saga.Command) error

	mu   sync.Mutex
	sent []saga.Command
}

var _ saga.Transport = (*Transport)(nil)

// Send records c and returns OnSend's error.
func (t *Transport) Send(ctx context.Context, c saga.Command) error {
	t.mu.Lock()
	t.sent = append(t.sent, c)
	t.mu.Unlock()
	if t.OnSend != nil {
		return t.OnSend(ctx, c)
	}
	return nil
}

// Sent returns every command sent so far, in order.
func (t *Transport) Sent() []saga.Command {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.sent)
}

// Take returns the commands sent since the last Take and forgets them.
func (t *Transport) Take() []saga.Command {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.sent
	t.sent = nil
	return out
}
