package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/eventshop/eventshop/pkg/auth"
)

// Cookie names. The session itself is kept server-side (sessionStore): the cookie
// holds only its random id.
const (
	sessionCookie = "eventshop_session"
	loginCookie   = "eventshop_login"
	csrfField     = "csrf_token"
	loginTTL      = 10 * time.Minute
)

// loginScopes are requested at login: what the storefront pages need, and
// offline_access for a refresh token, so a session outlives its short access token.
var loginScopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess, ScopeCart, ScopeOrdersRead, ScopeOrdersWrite}

// renewBefore is how long before its access token expires a session renews it, so
// a call in flight never carries a token that expires on the way.
const renewBefore = 30 * time.Second

// session is a logged-in browser, as loaded for one request. rec.CSRF is its
// synchronizer token: every state-changing form carries it and it never leaves the
// page it is rendered into.
type session struct {
	id     string
	claims *auth.Claims
	rec    sessionRecord
	rev    uint64
}

// accessToken is the session's current access token.
func (s *session) accessToken() string { return s.rec.Token.AccessToken }

// pendingLogin is an authorization request in flight, keyed by its state.
type pendingLogin struct {
	redirect string
	verifier string
	nonce    string
	next     string
	expires  time.Time
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionFrom returns the request's live session with its claims, or nil. A session
// whose access token is about to expire renews it first with its refresh token; one
// the issuer no longer renews (revoked, expired) ends here.
func (g *Gateway) sessionFrom(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	ctx := r.Context()
	sess, err := g.sessions.get(ctx, c.Value)
	if err != nil {
		g.logger.WarnContext(ctx, "session not loaded", "error", err)
		return nil
	}
	if sess == nil {
		return nil
	}
	if err := g.renew(ctx, sess); err != nil {
		g.logger.InfoContext(ctx, "session ended: access token not renewed", "error", err)
		g.sessions.delete(ctx, sess.id)
		return nil
	}
	claims, err := g.verifier.Verify(ctx, sess.accessToken())
	if err == nil && claims.Subject != sess.rec.Subject {
		err = fmt.Errorf("access token is for %q, not %q", claims.Subject, sess.rec.Subject)
	}
	if err != nil {
		g.logger.InfoContext(ctx, "session ended: access token refused", "error", err)
		g.sessions.delete(ctx, sess.id)
		return nil
	}
	sess.claims = claims
	return sess
}

// renew replaces the session's access token when it expires within renewBefore.
// The requests of one session renew one at a time; one that waited finds the
// token already renewed in the store.
func (g *Gateway) renew(ctx context.Context, sess *session) error {
	if !needsRenewal(sess.rec.Token) {
		return nil
	}
	mu := g.sessions.renewal(sess.id)
	mu.Lock()
	defer mu.Unlock()
	fresh, err := g.sessions.get(ctx, sess.id)
	if err != nil {
		return err
	}
	if fresh == nil {
		return errors.New("session ended meanwhile")
	}
	*sess = *fresh
	if !needsRenewal(sess.rec.Token) {
		return nil // renewed by the request this one waited for
	}
	old := sess.rec.Token
	if old.RefreshToken == "" || g.login == nil {
		return errors.New("no refresh token")
	}
	_, oc, err := g.login.config(ctx, g.login.redirect)
	if err != nil {
		return err
	}
	tok, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	var refused *oauth2.RetrieveError
	if err != nil && !errors.As(err, &refused) && time.Now().Before(old.Expiry) {
		// The issuer could not be reached; the token still works for a while, so
		// keep the session and try again on the next request.
		g.logger.WarnContext(ctx, "access token not renewed yet", "error", err)
		return nil
	}
	if err != nil {
		// Another gateway instance may have spent the refresh token first.
		if again, _ := g.sessions.get(ctx, sess.id); again != nil && again.rec.Token.RefreshToken != old.RefreshToken {
			*sess = *again
			return nil
		}
		return err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = old.RefreshToken // issuers may keep the same one
	}
	return g.sessions.update(ctx, sess, func(r *sessionRecord) { r.Token = tok })
}

func needsRenewal(tok *oauth2.Token) bool {
	return !tok.Expiry.IsZero() && time.Until(tok.Expiry) <= renewBefore
}

// revoke revokes the session's refresh token at the issuer (RFC 7009), so logout
// ends the session there too: what is left is its access token, valid until it
// expires (minutes). Best effort: the session is gone from the gateway anyway.
func (g *Gateway) revoke(ctx context.Context, sess *session) {
	refresh := sess.rec.Token.RefreshToken
	if refresh == "" || g.login == nil {
		return
	}
	// The browser may go before the issuer answers; the revocation must not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.login.revoke(ctx, refresh); err != nil {
		g.logger.WarnContext(ctx, "refresh token not revoked at logout", "error", err)
	}
}

// secureCookies is true when browsers reach the gateway over TLS.
func (g *Gateway) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(g.public, "https://")
}

func (g *Gateway) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: g.secureCookies(r), SameSite: http.SameSiteLaxMode,
	})
}

// validCSRF checks the form's synchronizer token against the session's, in
// constant time.
func validCSRF(sess *session, r *http.Request) bool {
	got := r.PostFormValue(csrfField)
	return sess != nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.rec.CSRF)) == 1
}

// oidcLogin runs the authorization code flow with PKCE against the issuer. Discovery
// happens on first use, so the gateway starts even while the issuer is still coming up.
type oidcLogin struct {
	issuer, clientID, secret, redirect string
	verifier                           *auth.Verifier

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCLogin(cfg Config, redirect string, v *auth.Verifier) *oidcLogin {
	return &oidcLogin{issuer: cfg.OIDCIssuer, clientID: cfg.OIDCClientID, secret: cfg.OIDCClientSecret, redirect: redirect, verifier: v}
}

func (o *oidcLogin) config(ctx context.Context, redirect string) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		p, err := oidc.NewProvider(ctx, o.issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discover %s: %w", o.issuer, err)
		}
		o.provider = p
	}
	return o.provider, &oauth2.Config{
		ClientID:     o.clientID,
		ClientSecret: o.secret,
		Endpoint:     o.provider.Endpoint(),
		RedirectURL:  redirect,
		Scopes:       loginScopes,
	}, nil
}

// revoke posts token to the issuer's revocation endpoint, authenticated as the
// client.
func (o *oidcLogin) revoke(ctx context.Context, token string) error {
	provider, _, err := o.config(ctx, o.redirect)
	if err != nil {
		return err
	}
	var meta struct {
		Endpoint string `json:"revocation_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.Endpoint == "" {
		return fmt.Errorf("issuer names no revocation endpoint (%v)", err)
	}
	form := url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.clientID), url.QueryEscape(o.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation: %s", resp.Status)
	}
	return nil
}

// redirectURL is where the issuer sends the browser back. Without a configured
// public URL, a browser on a loopback name (localhost, 127.0.0.1, [::1]) comes back
// to the name it used, so the login cookie, set for that name, is sent back too; the
// issuer still accepts only the redirect URIs registered for the client.
func (g *Gateway) redirectURL(r *http.Request) string {
	if g.cfg.PublicURL == "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "localhost" || net.ParseIP(strings.Trim(host, "[]")).IsLoopback() {
			return "http://" + r.Host + "/auth/callback"
		}
	}
	return g.login.redirect
}

// safeNext keeps a post-login redirect on this site: it returns next only when it is
// a path on this origin, and "/" otherwise. Browsers forgive a lot on the way from a
// Location header to a URL (they drop tabs and newlines, read a backslash as a slash,
// and take "//host" or "https:host" as another site), so next must parse as a bare
// path, with no scheme, host or user, that starts with exactly one slash, and contain
// no control, format or separator character nor backslash, raw or decoded, and no raw
// space.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' {
		return "/"
	}
	decoded, err := url.PathUnescape(next)
	if err != nil {
		return "/"
	}
	if strings.Contains(next, " ") {
		return "/"
	}
	// Checked decoded too, in case the value is encoded once more than it should be.
	for _, s := range []string{next, decoded} {
		if strings.HasPrefix(s, "//") || strings.Contains(s, "\\") || !utf8.ValidString(s) ||
			strings.ContainsFunc(s, notPrintable) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// handleLogin starts the flow: a fresh state (bound to this browser by a cookie),
// nonce and PKCE verifier, then a redirect to the issuer.
func (g *Gateway) handleLogin(w http.ResponseWriter, r *http.Request) {
	if g.login == nil {
		g.renderError(w, r, http.StatusServiceUnavailable, "Login is not configured on this gateway.")
		return
	}
	redirect := g.redirectURL(r)
	_, oc, err := g.login.config(r.Context(), redirect)
	if err != nil {
		g.logger.WarnContext(r.Context(), "oidc discovery failed", "error", err)
		g.renderError(w, r, http.StatusServiceUnavailable, "The login service is unavailable right now.")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	err = g.sessions.addPending(r.Context(), state, pendingLogin{redirect: redirect, verifier: verifier, nonce: nonce, next: safeNext(r.URL.Query().Get("next")), expires: time.Now().Add(loginTTL)})
	if err != nil {
		g.logger.WarnContext(r.Context(), "login not stored", "error", err)
		g.renderError(w, r, http.StatusServiceUnavailable, "The login service is unavailable right now.")
		return
	}
	g.setCookie(w, r, loginCookie, state, "/auth/", int(loginTTL.Seconds()))
	http.Redirect(w, r, oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), http.StatusFound)
}

var errLoginState = errors.New("login state does not match this browser")

// handleCallback finishes the flow: state check, code exchange with the PKCE
// verifier, ID token (nonce) and access token verification, then a new session.
func (g *Gateway) handleCallback(w http.ResponseWriter, r *http.Request) {
	if g.login == nil {
		g.renderError(w, r, http.StatusServiceUnavailable, "Login is not configured on this gateway.")
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		g.renderError(w, r, http.StatusUnauthorized, "Login failed: "+e)
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(loginCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		g.logger.InfoContext(ctx, "login callback rejected", "error", errLoginState)
		g.renderError(w, r, http.StatusBadRequest, "This login link is not valid for this browser. Please log in again.")
		return
	}
	g.setCookie(w, r, loginCookie, "", "/auth/", -1)
	p, ok := g.sessions.takePending(ctx, state)
	if !ok {
		g.renderError(w, r, http.StatusBadRequest, "This login has expired. Please log in again.")
		return
	}
	provider, oc, err := g.login.config(ctx, p.redirect)
	if err != nil {
		g.renderError(w, r, http.StatusServiceUnavailable, "The login service is unavailable right now.")
		return
	}
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		g.logger.WarnContext(ctx, "code exchange failed", "error", err)
		g.renderError(w, r, http.StatusUnauthorized, "Login failed: the issuer did not accept the code.")
		return
	}
	if rawID, ok := tok.Extra("id_token").(string); ok && rawID != "" {
		idt, err := provider.Verifier(&oidc.Config{ClientID: g.login.clientID}).Verify(ctx, rawID)
		if err != nil || idt.Nonce != p.nonce {
			g.logger.WarnContext(ctx, "id token rejected", "error", err)
			g.renderError(w, r, http.StatusUnauthorized, "Login failed: the identity token is not valid.")
			return
		}
	}
	claims, err := g.verifier.Verify(ctx, tok.AccessToken)
	if err != nil {
		g.logger.WarnContext(ctx, "access token rejected", "error", err)
		g.renderError(w, r, http.StatusUnauthorized, "Login failed: the access token is not valid for this shop.")
		return
	}
	sess, err := g.sessions.create(ctx, claims.Subject, tok)
	if err != nil {
		g.logger.WarnContext(ctx, "session not stored", "error", err)
		g.renderError(w, r, http.StatusServiceUnavailable, "You could not be logged in right now. Please try again.")
		return
	}
	g.setCookie(w, r, sessionCookie, sess.id, "/", 0)
	http.Redirect(w, r, p.next, http.StatusSeeOther)
}

// handleLogout ends the session (CSRF-checked, POST only).
func (g *Gateway) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess := g.sessionFrom(r)
	if sess != nil {
		if !validCSRF(sess, r) {
			g.renderError(w, r, http.StatusForbidden, "The form has expired. Please reload the page and try again.")
			return
		}
		g.sessions.delete(r.Context(), sess.id)
		g.revoke(r.Context(), sess)
	}
	g.setCookie(w, r, sessionCookie, "", "/", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
