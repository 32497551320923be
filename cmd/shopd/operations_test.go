package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/poll"
	"github.com/eventshop/eventshop/pkg/saga"
)

// storefrontUser is a browser logged in to the shop's storefront.
type storefrontUser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var (
	authRequestID = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)
	csrfInput     = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

// storefrontLogin logs user in through the dev issuer's form, as a browser does.
func (s *sagaShop) storefrontLogin(t *testing.T, user string) *storefrontUser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u := &storefrontUser{t: t, base: s.StorefrontURL(), c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	code, page := u.get("/auth/login?next=/admin")
	m := authRequestID.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("login page: %d %.500s", code, page)
	}
	resp, err := u.c.PostForm(s.IssuerURL()+"/login?authRequestID="+url.QueryEscape(m[1]),
		url.Values{"authRequestID": {m[1]}, "username": {user}, "password": {user + "-password"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c := csrfInput.FindSubmatch(body)
	if c == nil {
		t.Fatalf("after login as %s: %d, no form token in %.500s", user, resp.StatusCode, body)
	}
	u.csrf = string(c[1])
	return u
}

func (u *storefrontUser) get(path string) (int, string) {
	u.t.Helper()
	resp, err := u.c.Get(u.base + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post submits a form without following its redirect.
func (u *storefrontUser) post(path string, form url.Values) (int, string) {
	u.t.Helper()
	c := *u.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(u.base+path, form)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// An operator on call sees the stuck saga and the dead-lettered command behind it on
// the admin pages, and replays it there once the card network is back; the saga
// completes and the books balance. A shopper, a forged form or a GET cannot replay
// or drop anything.
func TestAdminPagesShowStuckSagasAndReplayDeadLetters(t *testing.T) {
	flaky := &flakyProvider{}
	flaky.failures.Store(1 << 20) // down until the test says otherwise
	s := startSagaShop(t, func(m *Main, _ *[]string) { m.PaymentProvider = flaky },
		withFlags("-payment-max-deliver", "1", "-order-saga-stuck-after", "1s", "-gateway-rate-user", "1000", "-gateway-rate-user-burst", "1000"))
	id := s.place("tok_visa", 1)

	dls := messaging.NewDeadLetters(s.operatorJetStream())
	var list []messaging.DeadLetter
	poll.Until(t, "the authorization dead-lettered", func() bool {
		var err error
		list, err = dls.List(context.Background(), 0)
		return err == nil && len(list) == 1
	})
	seq := strconv.FormatUint(list[0].Seq, 10)

	admin := s.storefrontLogin(t, "admin")
	poll.Until(t, "the saga listed as stuck", func() bool {
		code, page := admin.get("/admin/sagas")
		return code == http.StatusOK && strings.Contains(page, `data-saga="`+id+`"`)
	})
	_, page := admin.get("/admin/sagas")
	if !strings.Contains(page, "authorize") {
		t.Fatalf("stuck sagas page does not name the step:\n%s", page)
	}
	code, page := admin.get("/admin/dead-letters")
	for _, want := range []string{`data-seq="` + seq + `"`, "cmd.payment.authorize", "network hiccup", "/admin/dead-letters/" + seq + "/replay"} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("dead letters page (%d) lacks %q:\n%s", code, want, page)
		}
	}

	stillThere := func(what string) {
		t.Helper()
		got, err := dls.List(context.Background(), 0)
		if err != nil || len(got) != 1 || got[0].Seq != list[0].Seq {
			t.Fatalf("after %s the dead letters are %+v (%v)", what, got, err)
		}
	}
	alice := s.storefrontLogin(t, "alice")
	if code, _ := alice.post("/admin/dead-letters/"+seq+"/replay", url.Values{"csrf_token": {alice.csrf}}); code != http.StatusForbidden {
		t.Fatalf("a shopper replays a dead letter: %d", code)
	}
	if code, _ := alice.get("/admin/dead-letters"); code != http.StatusForbidden {
		t.Fatalf("a shopper lists the dead letters: %d", code)
	}
	if code, _ := admin.post("/admin/dead-letters/"+seq+"/drop", url.Values{"csrf_token": {alice.csrf}}); code != http.StatusForbidden {
		t.Fatalf("the admin's browser drops with another session's form token: %d", code)
	}
	if code, _ := admin.post("/admin/dead-letters/"+seq+"/drop", nil); code != http.StatusForbidden {
		t.Fatalf("a drop without a form token: %d", code)
	}
	if code, _ := admin.get("/admin/dead-letters/" + seq + "/drop"); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Fatalf("a drop by GET: %d", code)
	}
	if code, _ := admin.post("/admin/dead-letters/0/replay", url.Values{"csrf_token": {admin.csrf}}); code != http.StatusBadRequest {
		t.Fatalf("a replay of seq 0: %d", code)
	}
	stillThere("the refused attempts")
	if st, err := s.OrderService().Saga(context.Background(), id); err != nil || st.Status != saga.Running {
		t.Fatalf("the saga is %v (%v) before the replay, want running", st.Status, err)
	}

	flaky.failures.Store(0) // the card network is back
	if code, _ := admin.post("/admin/dead-letters/"+seq+"/replay", url.Values{"csrf_token": {admin.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("replay: %d", code)
	}
	if _, page := admin.get("/admin/dead-letters"); !strings.Contains(page, "Dead letter "+seq+" replayed on cmd.payment.authorize.") || !strings.Contains(page, "No dead letters.") {
		t.Fatalf("dead letters page after the replay:\n%s", page)
	}
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if _, page := admin.get("/admin/sagas"); strings.Contains(page, id) {
		t.Fatalf("the completed saga is still listed as stuck:\n%s", page)
	}
	s.audit()
}
