package resilience_test

import (
	"testing"
	"time"

	"github.com/eventshop/eventshop/pkg/resilience"
)

// Pauses double from the initial one up to the ceiling, each within half of its
// step either way, and start again from the initial one after Reset.
func TestBackoffDoublesToItsCeilingWithJitter(t *testing.T) {
	t.Parallel()
	b := resilience.NewBackoff(100*time.Millisecond, time.Second)
	step := 100 * time.Millisecond
	for range 8 {
		d := b.NextBackOff()
		if d < step/2 || d > step*3/2 {
			t.Fatalf("pause %v outside [%v, %v]", d, step/2, step*3/2)
		}
		step = min(2*step, time.Second)
	}
	b.Reset()
	if d := b.NextBackOff(); d < 50*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("pause after Reset %v, want about 100ms", d)
	}
}
