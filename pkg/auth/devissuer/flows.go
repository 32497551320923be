package devissuer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ErrInvalidCredentials is returned by Login and ClientCredentials when the issuer
// rejects the username/password or the client id/secret.
var ErrInvalidCredentials = errors.New("devissuer: invalid credentials")

// Login obtains an access token for a user the way a web client does, over HTTP:
// authorization request with PKCE, login form, redirect with the code, code exchange
// at the token endpoint. It acts as the "storefront" client (else the first client
// with redirect URIs) and requests scopes, by default openid plus all of that
// client's scopes; the user's own scopes narrow the grant. Requests go to the issuer
// URL, so a public Config.Issuer must be reachable from this process. It returns
// ErrInvalidCredentials for a wrong username or password, and other errors when the
// flow fails (no suitable client, issuer unreachable, protocol error).
func (i *Issuer) Login(ctx context.Context, username, password string, scopes ...string) (string, error) {
	c := i.loginClient()
	if c == nil {
		return "", errors.New("devissuer: login needs a client with redirect URIs")
	}
	return LoginAt(ctx, i.url, c.Client, username, password, scopes...)
}

// LoginAt runs the same flow as Issuer.Login against the issuer at issuerURL (for
// example one started by another process), acting as client c, which must have a
// redirect URI. It returns ErrInvalidCredentials for a wrong username or password.
func LoginAt(ctx context.Context, issuerURL string, c Client, username, password string, scopes ...string) (string, error) {
	t, err := LoginTokensAt(ctx, issuerURL, c, username, password, scopes...)
	return t.Access, err
}

// Tokens is what a token endpoint returned: an access token and, for a login that
// asked for offline_access or a refresh, the refresh token to renew it with.
type Tokens struct {
	Access  string
	Refresh string
}

// LoginTokensAt is LoginAt returning the refresh token too (ask for scope
// offline_access to get one).
func LoginTokensAt(ctx context.Context, issuerURL string, c Client, username, password string, scopes ...string) (Tokens, error) {
	if len(c.RedirectURIs) == 0 {
		return Tokens{}, errors.New("devissuer: login needs a client with redirect URIs")
	}
	if len(scopes) == 0 {
		scopes = []string{"openid"}
		for _, sc := range c.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	meta, err := discover(ctx, issuerURL)
	if err != nil {
		return Tokens{}, err
	}
	redirectURI := c.RedirectURIs[0]
	verifier, state := randomString(), randomString()
	sum := sha256.Sum256([]byte(verifier))

	// The redirect to the client is where a browser would leave the issuer; stop
	// there and read the code from it instead of calling the (absent) client.
	hc := &http.Client{
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}

	authURL := meta.AuthorizationEndpoint + "?" + url.Values{
		"client_id":             {c.ID},
		"redirect_uri":          {redirectURI},
		"response_type":         {"code"},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"nonce":                 {randomString()},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}.Encode()
	resp, err := get(ctx, hc, authURL)
	if err != nil {
		return Tokens{}, fmt.Errorf("devissuer: authorize: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Tokens{}, fmt.Errorf("devissuer: authorize: %w", redirectError(resp))
	}
	loginURL := resp.Request.URL // where the redirects ended: the login page
	requestID := loginURL.Query().Get("authRequestID")
	if requestID == "" {
		return Tokens{}, fmt.Errorf("devissuer: authorize ended at %s, not the login page", loginURL.Redacted())
	}

	resp, err = postForm(ctx, hc, loginURL.String(), url.Values{
		"authRequestID": {requestID},
		"username":      {username},
		"password":      {password},
	}, "", "")
	if err != nil {
		return Tokens{}, fmt.Errorf("devissuer: login: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return Tokens{}, ErrInvalidCredentials
	case resp.StatusCode < 300 || resp.StatusCode > 399:
		return Tokens{}, fmt.Errorf("devissuer: login: unexpected status %s", resp.Status)
	}
	callback, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return Tokens{}, fmt.Errorf("devissuer: login: bad redirect: %w", err)
	}
	q := callback.Query()
	if e := q.Get("error"); e != "" {
		return Tokens{}, fmt.Errorf("devissuer: login: %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		return Tokens{}, errors.New("devissuer: login: state mismatch in redirect")
	}
	code := q.Get("code")
	if code == "" {
		return Tokens{}, errors.New("devissuer: login: redirect carries no code")
	}

	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	if c.Secret == "" {
		form.Set("client_id", c.ID)
	}
	return tokens(ctx, meta.TokenEndpoint, form, c.ID, c.Secret)
}

// RefreshAt exchanges refresh for new tokens at the issuer, as client c; the
// refresh token used is retired. It returns an error if the issuer refuses it
// (revoked, already used or expired).
func RefreshAt(ctx context.Context, issuerURL string, c Client, refresh string) (Tokens, error) {
	meta, err := discover(ctx, issuerURL)
	if err != nil {
		return Tokens{}, err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if c.Secret == "" {
		form.Set("client_id", c.ID)
	}
	return tokens(ctx, meta.TokenEndpoint, form, c.ID, c.Secret)
}

// RevokeAt revokes token (a refresh token: RFC 7009) at the issuer, as client c.
// Revoking an unknown token succeeds, as the RFC says.
func RevokeAt(ctx context.Context, issuerURL string, c Client, token string) error {
	meta, err := discover(ctx, issuerURL)
	if err != nil {
		return err
	}
	if meta.RevocationEndpoint == "" {
		return errors.New("devissuer: discovery: no revocation endpoint")
	}
	form := url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}
	if c.Secret == "" {
		form.Set("client_id", c.ID)
	}
	resp, err := postForm(ctx, http.DefaultClient, meta.RevocationEndpoint, form, c.ID, c.Secret)
	if err != nil {
		return fmt.Errorf("devissuer: revoke: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("devissuer: revoke: status %s: %.200s", resp.Status, resp.body)
	}
	return nil
}

// ClientCredentials obtains an access token for a client with the client
// credentials grant; the token's subject is clientID. With no scopes, the client's
// configured scopes are granted. It returns ErrInvalidCredentials for an unknown
// client or a wrong secret, and other errors when the issuer is unreachable or
// refuses the grant.
func (i *Issuer) ClientCredentials(ctx context.Context, clientID, secret string, scopes ...string) (string, error) {
	meta, err := discover(ctx, i.url)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	t, err := tokens(ctx, meta.TokenEndpoint, form, clientID, secret)
	return t.Access, err
}

func (i *Issuer) loginClient() *client {
	if c, ok := i.store.clients["storefront"]; ok && len(c.Client.RedirectURIs) > 0 {
		return c
	}
	ids := make([]string, 0, len(i.store.clients))
	for id := range i.store.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids) // deterministic choice
	for _, id := range ids {
		if c := i.store.clients[id]; len(c.Client.RedirectURIs) > 0 {
			return c
		}
	}
	return nil
}

type discovery struct {
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// discover reads the endpoints from the discovery document, as any client would.
func discover(ctx context.Context, issuerURL string) (discovery, error) {
	var d discovery
	resp, err := get(ctx, http.DefaultClient, strings.TrimSuffix(issuerURL, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return d, fmt.Errorf("devissuer: discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("devissuer: discovery: status %s", resp.Status)
	}
	if err := json.Unmarshal(resp.body, &d); err != nil {
		return d, fmt.Errorf("devissuer: discovery: %w", err)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return d, errors.New("devissuer: discovery: endpoints missing")
	}
	return d, nil
}

// tokens posts a token request and returns the tokens.
func tokens(ctx context.Context, endpoint string, form url.Values, clientID, secret string) (Tokens, error) {
	resp, err := postForm(ctx, http.DefaultClient, endpoint, form, clientID, secret)
	if err != nil {
		return Tokens{}, fmt.Errorf("devissuer: token: %w", err)
	}
	var tr struct {
		AccessToken      string `json:"access_token"`
		RefreshToken     string `json:"refresh_token"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(resp.body, &tr); err != nil {
		return Tokens{}, fmt.Errorf("devissuer: token: status %s: %w", resp.Status, err)
	}
	switch {
	case tr.Error == "invalid_client":
		return Tokens{}, fmt.Errorf("%w: %s", ErrInvalidCredentials, tr.ErrorDescription)
	case tr.Error != "":
		return Tokens{}, fmt.Errorf("devissuer: token: %s: %s", tr.Error, tr.ErrorDescription)
	case resp.StatusCode != http.StatusOK || tr.AccessToken == "":
		return Tokens{}, fmt.Errorf("devissuer: token: status %s without access token", resp.Status)
	}
	return Tokens{Access: tr.AccessToken, Refresh: tr.RefreshToken}, nil
}

// response is an http.Response whose (bounded) body has been read and closed.
type response struct {
	*http.Response
	body []byte
}

func get(ctx context.Context, hc *http.Client, u string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return do(hc, req)
}

// postForm posts form, authenticating with HTTP Basic when clientID is set and the
// secret is not empty (RFC 6749 2.3.1 wants both form-encoded first).
func postForm(ctx context.Context, hc *http.Client, u string, form url.Values, clientID, secret string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" && secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return do(hc, req)
}

func do(hc *http.Client, req *http.Request) (*response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &response{Response: resp, body: body}, nil
}

// redirectError explains an authorize response that did not reach the login page:
// an OAuth error redirected to the client, or an error page.
func redirectError(resp *response) error {
	if loc, err := resp.Location(); err == nil {
		if q := loc.Query(); q.Get("error") != "" {
			return fmt.Errorf("%s: %s", q.Get("error"), q.Get("error_description"))
		}
	}
	return fmt.Errorf("status %s: %.200s", resp.Status, resp.body)
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
