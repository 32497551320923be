package devissuer

import (
	"context"
	"errors"
	"html/template"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// loginPath is where op sends the browser to authenticate (see client.LoginURL).
const loginPath = "/login"

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · eventshop</title>
<style>
/* The storefront's colours and type, so signing in does not look like leaving the shop. */
:root{--ink:#1d2330;--muted:#667085;--line:#e4e7ec;--brand:#7a3e14;--accent:#c2621a;--bg:#faf8f5;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);background:var(--bg);line-height:1.45}
header{padding:.75rem 1.5rem;background:#fff;border-bottom:1px solid var(--line)}
.brand{font-weight:800;font-size:1.3rem;color:var(--brand)}
main{max-width:24rem;margin:3rem auto;padding:1.5rem 1.75rem;background:#fff;border:1px solid var(--line);border-radius:12px}
h1{margin:0 0 .5rem;font-size:1.4rem}
label{display:block;margin:.8rem 0 .25rem;font-weight:600}
input{width:100%;padding:.5rem .6rem;border:1px solid var(--line);border-radius:6px;font:inherit}
button{margin-top:1.2rem;width:100%;padding:.6rem 1rem;border:1px solid var(--accent);border-radius:6px;background:var(--accent);color:#fff;font:inherit;font-weight:600;cursor:pointer}
.error{color:var(--bad)}.note{color:var(--muted);font-size:.85rem;margin-top:1rem}
</style></head>
<body>
<header><span class="brand">eventshop</span></header>
<main>
<h1>Sign in</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<p class="note">Development issuer — demo accounts only (alice, bob, admin).</p>
</main>
</body></html>
`))

type loginData struct {
	ID, Username, Error string
}

// loginHandler is the username/password page of the authorization code flow. On
// success it hands the browser back to op's callback, which redirects to the client.
type loginHandler struct {
	store    *storage
	callback func(ctx context.Context, authRequestID string) string
	post     http.Handler
}

func newLoginHandler(store *storage, callback func(context.Context, string) string, issuer *op.IssuerInterceptor) *loginHandler {
	h := &loginHandler{store: store, callback: callback}
	// The callback URL is built from the issuer op keeps in the request context.
	h.post = issuer.HandlerFunc(h.submit)
	return h
}

func (h *loginHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id := r.URL.Query().Get("authRequestID")
		if id == "" {
			http.Error(w, "missing authRequestID: start the login at the client", http.StatusBadRequest)
			return
		}
		render(w, http.StatusOK, loginData{ID: id})
	case http.MethodPost:
		h.post.ServeHTTP(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *loginHandler) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse login form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("authRequestID")
	username := r.PostForm.Get("username")
	err := h.store.checkLogin(id, username, r.PostForm.Get("password"))
	switch {
	case errors.Is(err, errBadCredentials):
		render(w, http.StatusUnauthorized, loginData{ID: id, Username: username, Error: "Invalid username or password."})
		return
	case err != nil:
		http.Error(w, "This login request is unknown or has expired; start again from the application.", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, h.callback(r.Context(), id), http.StatusSeeOther)
}

func render(w http.ResponseWriter, code int, d loginData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = loginPage.Execute(w, d) // the status is sent; a write error means the browser left
}
