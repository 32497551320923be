package resilience_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/resilience"
)

// Pauses double from the initial one up to the ceiling, each within half of its
// step either way, and start again from the initial one after Reset.
func TestBackoffDoublesToItsCeilingWithJitter(t *testing.T) {
	t.Parallel()
	b := resilience.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	b.Reset() // before the first pause: nothing to reset
	step := 100 * time.Millisecond
	for range 8 {
		d := b.Next()
		if d < step/2 || d > step*3/2 {
			t.Fatalf("pause %v outside [%v, %v]", d, step/2, step*3/2)
		}
		step = min(2*step, time.Second)
	}
	b.Reset()
	if d := b.Next(); d < 50*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("pause after Reset %v, want about 100ms", d)
	}
}

// Wait returns the context's error, without the pause, once it is done.
func TestBackoffWaitStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := resilience.Backoff{Initial: time.Hour, Max: time.Hour}
	if err := b.Wait(ctx); err != context.Canceled {
		t.Fatalf("Wait on a done context: %v", err)
	}
}
