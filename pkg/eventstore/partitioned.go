package eventstore

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
)

// PartitionedOptions tunes SubscribePartitioned.
type PartitionedOptions struct {
	// Workers is how many events are handled at once (default 16). Events of one
	// stream always go to the same worker, in order.
	Workers int
	// Queue is how many events wait for each worker before the subscription stops
	// reading (default 64): the bound on memory and on work redone after a crash.
	Queue int
	// Progress, if set, is called with a checkpoint each time it moves: every event
	// at or before it was handled. It is called from the workers, one call at a time,
	// with ever greater positions; it must not block for long.
	Progress func(Position)
}

// SubscribePartitioned is SubscribeCategory with the events of different streams
// handled concurrently: each stream (an aggregate) is pinned to one of
// opts.Workers workers by a hash of its name, so its events are handled one at a
// time and in order, while other streams' events go on beside them. One slow
// aggregate therefore holds up only the streams that share its worker.
//
// Since later events may be handled before earlier ones of other streams, a
// checkpoint is only what opts.Progress reports: the position below which nothing
// is left unhandled. Resuming from it handles again, in order, the events after it
// that were already handled, so h must be idempotent, as for any checkpoint saved
// less often than every event.
//
// It returns the first error h returns, wrapped as SubscribeCategory wraps it,, after
// the events already handed to workers were handled or abandoned, and otherwise
// what SubscribeCategory returns: ctx.Err() when ctx ends.
func SubscribePartitioned(ctx context.Context, s Store, category string, after Position, h Handler, opts PartitionedOptions) error {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	marks := &watermark{progress: opts.Progress}
	queues := make([]chan Event, opts.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		q := make(chan Event, opts.Queue)
		queues[i] = q
		wg.Go(func() {
			for e := range q {
				if ctx.Err() != nil {
					continue // abandoned: the checkpoint stays before it
				}
				if err := handle(ctx, h, e); err != nil {
					cancel(&handlerError{err: err})
					continue
				}
				marks.done(e.Position)
			}
		})
	}
	err := s.SubscribeCategory(ctx, category, after, func(ctx context.Context, e Event) error {
		marks.add(e.Position)
		select {
		case queues[Partition(e.Stream, len(queues))] <- e:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if herr, ok := errors.AsType[*handlerError](context.Cause(ctx)); ok {
		return herr.err
	}
	return err
}

// handlerError marks the cancellation cause that came from the handler.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// Partition returns the partition of stream among n: an FNV-1a hash of the stream's
// name modulo n. SubscribePartitioned pins a stream to a worker by it, and
// pkg/partition shares a category among instances by it. n must not change while
// checkpoints kept per partition live: it moves streams between partitions.
func Partition(stream string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % uint32(n))
}

// watermark tracks the events handed out, in category order, and reports the
// position below which all were handled.
type watermark struct {
	mu       sync.Mutex
	pending  []mark // in position order; the head is the oldest not yet handled
	progress func(Position)
}

type mark struct {
	pos  Position
	done bool
}

func (w *watermark) add(p Position) {
	w.mu.Lock()
	w.pending = append(w.pending, mark{pos: p})
	w.mu.Unlock()
}

func (w *watermark) done(p Position) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, ok := slices.BinarySearchFunc(w.pending, p, func(m mark, p Position) int {
		switch {
		case m.pos < p:
			return -1
		case m.pos > p:
			return 1
		}
		return 0
	})
	if !ok {
		return
	}
	w.pending[i].done = true
	n := 0
	for n < len(w.pending) && w.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	last := w.pending[n-1].pos
	w.pending = slices.Delete(w.pending, 0, n)
	if w.progress != nil {
		w.progress(last)
	}
}
