package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The post-login redirect stays on this site for every way a browser can be talked
// into leaving it, and keeps an ordinary path (with its query) as it is.
func TestSafeNext(t *testing.T) {
	for _, tt := range []struct{ next, want string }{
		{"/cart", "/cart"},
		{"/products?category=coffee&query=french+press", "/products?category=coffee&query=french+press"},
		{"/orders/abc?x=%20y", "/orders/abc?x=%20y"},
		{"", "/"},
		{"cart", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/\t/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{"/%09/evil.example/", "/"},
		{"/%2F/evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"https:evil.example", "/"},
		{"https://evil.example/", "/"},
		{"/ /evil.example", "/"},
		{"/\u2028/evil.example", "/"},
		{"/\xff", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}

// Strict-Transport-Security is sent when the shop's public URL is https, even though
// TLS ends in front of the gateway (the request arrives in plain HTTP), and not for a
// plain-HTTP shop.
func TestHSTSFollowsThePublicURL(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, https := range []bool{false, true} {
		rec := httptest.NewRecorder()
		securityHeaders(https, ok).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got := rec.Header().Get("Strict-Transport-Security"); (got != "") != https {
			t.Errorf("public URL https=%v: Strict-Transport-Security %q", https, got)
		}
	}
}

// Behind a proxy the client IP is the last hop of all X-Forwarded-For lines: a
// client that sends its own line (or several) before the proxy's cannot choose the
// address it is limited by.
func TestClientIPReadsEveryForwardedLine(t *testing.T) {
	l := newLimiters(Config{TrustForwardedFor: true, IPRate: 1, IPBurst: 3, UserRate: 1, UserBurst: 1})
	for _, tt := range []struct {
		lines []string
		want  string
	}{
		{[]string{"203.0.113.7"}, "203.0.113.7"},
		{[]string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		{[]string{"1.1.1.1", "203.0.113.7"}, "203.0.113.7"},
		{[]string{"1.1.1.1, 2.2.2.2", "203.0.113.7, "}, "203.0.113.7"},
		{[]string{"1.1.1.1", "not-an-ip"}, "192.0.2.1"},
		{nil, "192.0.2.1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:4444"
		for _, v := range tt.lines {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := l.clientIP(r); got != tt.want {
			t.Errorf("X-Forwarded-For %q: client %q, want %q", tt.lines, got, tt.want)
		}
	}

	// As an attacker would: a fresh forged first line on every request, the proxy's
	// line the same. The limit still applies.
	h := l.perIP(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	limited := 0
	for i := range 10 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Add("X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		r.Header.Add("X-Forwarded-For", "203.0.113.9")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 6 {
		t.Errorf("%d of 10 requests over a burst of 3 refused, want at least 6", limited)
	}
}
