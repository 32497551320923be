package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/eventshop/gateway"
)

// Text that is not UTF-8 in a path or query is refused at the edge with 400 naming
// the part, on the API (JSON) and the storefront (a page), instead of failing inside
// as an internal error; the user's orders are untouched.
func TestInvalidUTF8IsABadRequest(t *testing.T) {
	s := startShop(t, shopOptions{})
	alice := s.token("alice")
	id := s.placeOrder(alice, "utf8-key-1")
	// The order's stream ends when it is final; compare the list after that.
	if r := s.api("GET", "/api/v1/orders/"+id+"/events", alice, nil); !strings.Contains(string(r.body), `"terminal":true`) {
		t.Fatalf("order events: %d %s", r.code, r.body)
	}
	before := s.api("GET", "/api/v1/orders", alice, nil)

	for _, tt := range []struct{ path, field string }{
		{"/api/v1/orders/%ff", "path"},
		{"/api/v1/search/products?query=%ff%fe", `query parameter "query"`},
		{"/api/v1/orders?pageToken=abc%ff", `query parameter "pageToken"`},
		{"/api/v1/orders/" + id + "?%ff=1", "query parameter"},
	} {
		r := s.api("GET", tt.path, alice, nil)
		if r.code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s, want 400", tt.path, r.code, r.body)
			continue
		}
		var body struct {
			Error struct {
				Fields []struct{ Field string } `json:"fields"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || len(body.Error.Fields) != 1 || !strings.HasPrefix(body.Error.Fields[0].Field, tt.field) {
			t.Errorf("GET %s: body %s, want the field %q named", tt.path, r.body, tt.field)
		}
	}
	b := s.login("alice")
	for _, p := range []string{"/orders/%ff", "/products?query=%ff%fe"} {
		if r := b.get(p); r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "UTF-8") {
			t.Errorf("GET %s: %d, want a 400 page saying why", p, r.code)
		}
	}
	if after := s.api("GET", "/api/v1/orders", alice, nil); after.code != http.StatusOK || !strings.Contains(string(after.body), id) || string(after.body) != string(before.body) {
		t.Errorf("orders changed: %s -> %s", before.body, after.body)
	}
}

// The order-status stream needs a login, opens only for the caller's own order, and
// one user holds at most gateway.DefaultStreamsPerUser open at once; closing one
// frees its slot, and another user is not held back.
func TestOrderStreamsAreLimited(t *testing.T) {
	s := startShop(t, shopOptions{})
	s.stop["payment"]() // the order stays in progress, so its streams stay open
	alice, bob := s.token("alice"), s.token("bob")
	id := s.placeOrder(alice, "streams-key-1")
	path := "/api/v1/orders/" + id + "/events"

	open := func(token string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return http.DefaultClient.Do(req)
	}
	if r := s.api("GET", path, "", nil); r.code != http.StatusUnauthorized {
		t.Errorf("anonymous stream: %d, want 401", r.code)
	}
	if r := s.api("GET", "/api/v1/orders/00000000-0000-4000-8000-000000000000/events", alice, nil); r.code != http.StatusNotFound {
		t.Errorf("stream of an unknown order: %d, want 404", r.code)
	}
	if r := s.api("GET", path, bob, nil); r.code != http.StatusNotFound {
		t.Errorf("bob's stream of alice's order: %d, want 404", r.code)
	}
	var held []*http.Response
	defer func() {
		for _, r := range held {
			r.Body.Close()
		}
	}()
	for i := range gateway.DefaultStreamsPerUser {
		r, err := open(alice)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %v %v", i, r.StatusCode, err)
		}
		held = append(held, r)
	}
	if r := s.api("GET", path, alice, nil); r.code != http.StatusTooManyRequests {
		t.Fatalf("stream over the cap: %d %s, want 429", r.code, r.body)
	}
	held[0].Body.Close()
	held = held[1:]
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := open(alice)
		if err == nil && r.StatusCode == http.StatusOK {
			held = append(held, r)
			break
		}
		if err == nil {
			r.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's slot never came back: %v %v", r.StatusCode, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
