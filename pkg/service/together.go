package service

import (
	"context"
	"errors"
	"sync"
)

// Together runs every part and every background task with one shared context. When
// the first part returns, or ctx ends, the context is cancelled so the others drain
// and stop; Together waits for all of them and returns the parts' errors joined
// (nil when every part stopped cleanly). Background tasks (sweepers, pruners) only
// stop with the parts; nothing they do ends the run.
func Together(ctx context.Context, parts []func(context.Context) error, background ...func(context.Context)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, bg := range background {
		wg.Go(func() { bg(ctx) })
	}
	errc := make(chan error, len(parts))
	for _, p := range parts {
		go func() { errc <- p(ctx) }()
	}
	var errs []error
	for i := range parts {
		errs = append(errs, <-errc)
		if i == 0 {
			cancel()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
