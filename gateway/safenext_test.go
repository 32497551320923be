package gateway

import (
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
