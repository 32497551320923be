// Package poll is how tests wait for what another goroutine or process brings
// about: check a condition every few milliseconds, and fail the test with what was
// awaited when it does not come within a bound. One helper for every module's tests,
// with one bound: generous, since test binaries share two cores.
package poll

import (
	"testing"
	"time"
)

// Timeout bounds every wait.
const Timeout = time.Minute

// interval is the pause between two checks.
const interval = 10 * time.Millisecond

// Until waits until cond reports true, and fails t (Fatal, naming what) when
// Timeout passes first.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(interval)
	}
}

// NoError waits until cond returns nil, and fails t (Fatal) with cond's last error
// when Timeout passes first.
func NoError(t testing.TB, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v: %v", Timeout, err)
		}
		time.Sleep(interval)
	}
}
