package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Storefront tuning.
const (
	productsPerPage = 12
	ordersPerPage   = 20
	// orderStreamMax ends an event stream; the page's EventSource reconnects.
	orderStreamMax = 2 * time.Minute
)

// TestCards are the payment tokens the checkout offers (the payment service's
// simulated card network understands them).
var TestCards = []struct{ Token, Label string }{
	{"tok_visa", "Visa (approved)"},
	{"tok_mastercard", "Mastercard (approved)"},
	{"tok_chargeDeclined", "Card declined"},
	{"tok_insufficientFunds", "Insufficient funds"},
}

// routes assembles the whole HTTP surface.
func (g *Gateway) routes(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	limited := func(h http.Handler) http.Handler { return g.limits.perIP(limitBody(g.cfg.MaxBodyBytes, h)) }
	page := func(h http.HandlerFunc) http.Handler { return limited(h) }

	mux.Handle("/api/", limited(corsAPI(splitOrigins(g.cfg.CORSOrigins), api)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", g.handleReady)
	mux.Handle("GET /metrics", g.metrics.handler)
	mux.HandleFunc("GET /static/products/{file}", productImage)
	mux.Handle("GET /static/", staticFiles())
	// Browsers ask for /favicon.ico whatever the page says; the same icon answers.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})

	mux.Handle("GET /auth/login", page(g.handleLogin))
	mux.Handle("GET /auth/callback", page(g.handleCallback))
	mux.Handle("POST /auth/logout", page(g.handleLogout))

	mux.Handle("GET /{$}", page(g.handleHome))
	mux.Handle("GET /products", page(g.handleProducts))
	mux.Handle("GET /products/{id}", page(g.handleProduct))
	mux.Handle("GET /cart", page(g.handleCart))
	mux.Handle("POST /cart/items", page(g.handleCartAdd))
	mux.Handle("POST /cart/items/{id}", page(g.handleCartUpdate))
	mux.Handle("POST /cart/items/{id}/remove", page(g.handleCartRemove))
	mux.Handle("GET /checkout", page(g.handleCheckout))
	mux.Handle("POST /checkout", page(g.handleCheckoutPost))
	mux.Handle("GET /orders", page(g.handleOrders))
	mux.Handle("GET /orders/{id}", page(g.handleOrder))
	mux.Handle("GET /orders/{id}/events", page(g.handleOrderEvents))
	mux.Handle("POST /orders/{id}/cancel", page(g.handleOrderCancel))
	mux.Handle("GET /admin", page(g.handleAdmin))
	mux.Handle("POST /admin/stock", page(g.handleAdminStock))
	mux.Handle("GET /admin/sagas", page(g.handleAdminSagas))
	mux.Handle("GET /admin/dead-letters", page(g.handleAdminDeadLetters))
	mux.Handle("POST /admin/dead-letters/{seq}/{action}", page(g.handleDeadLetterAction))
	mux.Handle("/", page(func(w http.ResponseWriter, r *http.Request) {
		g.renderError(w, r, http.StatusNotFound, "There is no such page.")
	}))
	return g.metrics.middleware(securityHeaders(strings.HasPrefix(g.cfg.PublicURL, "https://"), g.validUTF8(mux)))
}

// handleReady answers 200 only when every deployed upstream reports SERVING.
func (g *Gateway) handleReady(w http.ResponseWriter, r *http.Request) {
	ready, report := g.ups.check(r.Context())
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Ready     bool             `json:"ready"`
		Upstreams []upstreamHealth `json:"upstreams"`
	}{ready, report})
}

// callCtx is the context for a call on behalf of the session's user: the access
// token travels as the authorization metadata the services verify.
func callCtx(r *http.Request, sess *session) context.Context {
	if sess == nil {
		return r.Context()
	}
	return metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+sess.accessToken())
}

// requireUser returns the session, or redirects to login (after checking the
// per-user rate limit, which may answer 429).
func (g *Gateway) requireUser(w http.ResponseWriter, r *http.Request) *session {
	sess := g.sessionFrom(r)
	if sess == nil {
		next := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			next = "/"
		}
		http.Redirect(w, r, "/auth/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil
	}
	if !g.limits.allowUser(w, sess.claims) {
		return nil
	}
	return sess
}

// requirePost checks the session and the CSRF token of a state-changing form.
func (g *Gateway) requirePost(w http.ResponseWriter, r *http.Request) *session {
	sess := g.sessionFrom(r)
	if sess == nil || !validCSRF(sess, r) {
		g.renderError(w, r, http.StatusForbidden, "The form has expired or did not come from this shop. Please reload the page and try again.")
		return nil
	}
	if !g.limits.allowUser(w, sess.claims) {
		return nil
	}
	return sess
}

// failed handles an upstream error that stops a page. It returns true when it wrote
// the response. Unavailable services are not handled here: pages degrade instead.
func (g *Gateway) failed(w http.ResponseWriter, r *http.Request, sess *session, err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unauthenticated:
		if sess != nil {
			g.sessions.delete(r.Context(), sess.id)
		}
		http.Redirect(w, r, "/auth/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	case codes.PermissionDenied:
		g.renderError(w, r, http.StatusForbidden, "You are not allowed to see this.")
	case codes.NotFound:
		g.renderError(w, r, http.StatusNotFound, "We could not find that.")
	case codes.InvalidArgument:
		g.renderError(w, r, http.StatusBadRequest, "That request is not valid: "+fieldMessages(err))
	default:
		if unavailable(err) {
			g.renderError(w, r, http.StatusServiceUnavailable, "A service this page needs is unavailable right now. Please try again shortly.")
			return true
		}
		g.logger.ErrorContext(r.Context(), "page upstream error", "path", r.URL.Path, "error", err)
		g.renderError(w, r, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	return true
}

// fieldMessages lists a validation error's field violations for a person to read.
func fieldMessages(err error) string {
	st := status.Convert(err)
	var parts []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				parts = append(parts, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	if len(parts) == 0 {
		return st.Message()
	}
	return strings.Join(parts, "; ")
}
