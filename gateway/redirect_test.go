package gateway_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
)

// Through the real login flow: whatever next the login link carries, the gateway's
// callback sends the browser to a path on this site (and the login itself works).
func TestLoginRedirectStaysOnSite(t *testing.T) {
	s := startShop(t, shopOptions{})
	// The values as the gateway reads them from the query: /auth/login?next=/%09/evil.example/
	// arrives as "/\t/evil.example/".
	for _, next := range []string{"/\t/evil.example/", "//evil.example", `/\evil.example`, "https:evil.example", "/\r\nLocation: //evil.example", "/%2F/evil.example"} {
		jar, _ := cookiejar.New(nil)
		b := &browser{s: s, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
		page := b.get("/auth/login?next=" + url.QueryEscape(next))
		m := authRequestID.FindSubmatch(page.body)
		if page.code != http.StatusOK || m == nil {
			t.Fatalf("next=%q: login page %d %s", next, page.code, page.body)
		}
		form := url.Values{"authRequestID": {string(m[1])}, "username": {"alice"}, "password": {"alice-password"}}
		req, _ := http.NewRequest(http.MethodPost, s.issuer.URL()+"/login?authRequestID="+url.QueryEscape(string(m[1])), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// Follow the issuer's redirects up to the gateway's callback, then read the
		// callback's own answer.
		c := *b.c
		c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if r.URL.Path == "/auth/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}
		toCallback := s.do(&c, req)
		cb := toCallback.header.Get("Location")
		if !strings.Contains(cb, "/auth/callback") {
			t.Fatalf("next=%q: issuer answered %d, Location %q; want a redirect to the callback", next, toCallback.code, cb)
		}
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		cbReq, _ := http.NewRequest(http.MethodGet, cb, nil)
		done := s.do(&c, cbReq)
		loc := done.header.Get("Location")
		if done.code != http.StatusFound && done.code != http.StatusSeeOther {
			t.Fatalf("next=%q: callback answered %d %s", next, done.code, done.body)
		}
		if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, `\`) || strings.ContainsFunc(loc, unicode.IsControl) {
			t.Errorf("next=%q: callback redirects to %q, off this site", next, loc)
		}
		if r := b.get("/cart"); r.code != http.StatusOK || !strings.Contains(string(r.body), "Your cart") {
			t.Errorf("next=%q: not logged in after the callback: %d", next, r.code)
		}
	}
}
