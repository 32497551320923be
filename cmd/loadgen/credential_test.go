package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// A shopper whose token the shop stops accepting (an issuer that lost its key, or a
// token past its expiry) logs in again once and carries on; many goroutines sharing
// the shopper log in once between them, and a login that keeps failing leaves the
// call refused rather than looping.
func TestRefusedTokenIsRenewedOnce(t *testing.T) {
	var valid atomic.Value
	valid.Store("new")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+valid.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"products":[]}`))
	}))
	defer srv.Close()
	var logins atomic.Int64
	cred := &credential{token: "old", login: func(context.Context) (string, error) {
		logins.Add(1)
		return "new", nil
	}}
	c := &shopClient{base: srv.URL, cred: cred, stats: newStats(), http: srv.Client()}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.listProducts(t.Context()); err != nil {
				t.Errorf("listProducts: %v", err)
			}
		})
	}
	wg.Wait()
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins for 20 refused calls sharing a shopper, want 1", n)
	}

	valid.Store("never")
	if _, err := c.listProducts(t.Context()); err == nil {
		t.Fatal("a call the shop keeps refusing succeeded")
	}
	if n := logins.Load(); n > 2 {
		t.Fatalf("%d logins, want at most one more", n)
	}
}
