package auth_test

import (
	"testing"

	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

// BenchmarkVerify measures the per-request cost once discovery and keys are cached:
// the RS256 signature check dominates.
func BenchmarkVerify(b *testing.B) {
	iss, err := devissuer.Start(b.Context(), devissuer.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer iss.Close()
	tok, err := iss.Login(b.Context(), "alice", "alice-password")
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b, iss.URL(), nil)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
