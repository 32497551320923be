package auth_test

import (
	"testing"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

// BenchmarkVerify measures the per-request cost once discovery and keys are cached.
// uncached verifies in full every time (the RS256 signature check and JSON decoding
// dominate); cached answers a token seen before from the verified-token cache. Both
// run in one process against one issuer, so their ratio holds on a shared machine.
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
	for _, bm := range []struct {
		name      string
		cacheSize int
	}{{"uncached", -1}, {"cached", 0}} {
		b.Run(bm.name, func(b *testing.B) {
			v := newVerifier(b, iss.URL(), func(c *auth.VerifierConfig) { c.CacheSize = bm.cacheSize })
			if _, err := v.Verify(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
