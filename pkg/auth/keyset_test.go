package auth_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
)

// countingTransport counts the requests that are not discovery (the key set's).
type countingTransport struct{ keys atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.Contains(r.URL.Path, "openid-configuration") {
		c.keys.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Tokens under made-up key ids, or forged under the issuer's own, cost the issuer no
// request: the keys are fetched again only for an unknown key id, and at most once
// per auth.MinKeyRefresh. The genuine token keeps working throughout.
func TestForgedKeyIDsDoNotHammerTheIssuer(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	valid := login(t, iss, "alice")
	ct := &countingTransport{}
	var offset atomic.Int64
	v := newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) {
		c.HTTPClient = &http.Client{Transport: ct, Timeout: 10 * time.Second}
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.CacheSize = -1 // every call verifies
	})
	cc := dial(t, startServer(t, v, nil))
	mustWork := func() {
		t.Helper()
		if _, err := whoAmI(t.Context(), cc, valid); err != nil {
			t.Fatalf("genuine token refused: %v", err)
		}
	}
	mustWork()
	if n := ct.keys.Load(); n != 1 {
		t.Fatalf("%d key fetches for the first token, want 1", n)
	}
	for i := range 20 {
		_, err := whoAmI(t.Context(), cc, forge(t, valid, fmt.Sprintf("attacker-%d", i)))
		wantStatus(t, err, codes.Unauthenticated, "signature invalid")
		_, err = whoAmI(t.Context(), cc, forge(t, valid, ""))
		wantStatus(t, err, codes.Unauthenticated, "signature invalid")
	}
	mustWork()
	if n := ct.keys.Load(); n != 1 {
		t.Fatalf("%d key fetches after 40 forged tokens, want still 1", n)
	}

	offset.Store(int64(auth.MinKeyRefresh + time.Second))
	for i := range 10 {
		_, err := whoAmI(t.Context(), cc, forge(t, valid, fmt.Sprintf("later-%d", i)))
		wantStatus(t, err, codes.Unauthenticated, "signature invalid")
	}
	if n := ct.keys.Load(); n != 2 {
		t.Fatalf("%d key fetches once the interval passed and 10 unknown key ids came, want 2", n)
	}
	mustWork()
}
