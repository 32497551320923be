package devissuer

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequestTTL bounds how long a started login may take before it is forgotten.
const authRequestTTL = 10 * time.Minute

var (
	errBadCredentials = errors.New("invalid username or password")
	errUnknownRequest = errors.New("login request unknown or expired")
)

// storage is the in-memory op.Storage behind the issuer. Users, clients and the key
// are fixed at start; auth requests, codes and issued tokens live in maps.
type storage struct {
	issuer   string
	audience string
	ttl      time.Duration
	refTTL   time.Duration
	users    map[string]User
	clients  map[string]*client
	key      signingKey

	mu       sync.Mutex
	requests map[string]*authRequest // by id
	codes    map[string]string       // code -> auth request id
	tokens   map[string]issuedToken  // by token id (the JWT's jti)
	refresh  map[string]refreshToken // by the token itself (opaque, random)
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

type issuedToken struct {
	subject  string
	clientID string
	scopes   []string
	audience []string
	expires  time.Time
}

func newStorage(cfg Config, issuer string, key signingKey) *storage {
	s := &storage{
		issuer:   issuer,
		audience: cfg.Audience,
		ttl:      cfg.AccessTokenTTL,
		refTTL:   cfg.RefreshTokenTTL,
		users:    map[string]User{},
		clients:  map[string]*client{},
		key:      key,
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		tokens:   map[string]issuedToken{},
		refresh:  map[string]refreshToken{},
	}
	for _, u := range cfg.Users {
		s.users[u.Username] = u
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = &client{Client: c, loginURL: issuer + loginPath, ttl: cfg.AccessTokenTTL}
	}
	return s
}

// supportedScopes lists, for discovery, the standard scopes plus every client scope.
func (s *storage) supportedScopes() []string {
	scopes := []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}
	for _, c := range s.clients {
		for _, sc := range c.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	slices.Sort(scopes[4:])
	return scopes
}

// checkLogin completes auth request id for the user if the password matches,
// narrowing the requested scopes to those the user may hold. It returns
// errUnknownRequest or errBadCredentials.
func (s *storage) checkLogin(id, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok || time.Since(req.created) > authRequestTTL {
		return errUnknownRequest
	}
	u, ok := s.users[username]
	// Compare even for unknown users so timing does not reveal which names exist.
	match := subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	if !ok || !match {
		return errBadCredentials
	}
	req.subject = u.Username
	req.authTime = time.Now()
	req.done = true
	req.scopes = slices.DeleteFunc(req.scopes, func(sc string) bool {
		return sc != oidc.ScopeOpenID && sc != oidc.ScopeOfflineAccess && !slices.Contains(u.Scopes, sc)
	})
	return nil
}

// CreateAuthRequest stores a validated authorization request until login completes.
func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(r.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired() // there is no session to reuse
	}
	req := &authRequest{
		id:           uuid.NewString(),
		created:      time.Now(),
		clientID:     r.ClientID,
		redirectURI:  r.RedirectURI,
		state:        r.State,
		nonce:        r.Nonce,
		scopes:       slices.Clone([]string(r.Scopes)),
		responseType: r.ResponseType,
		responseMode: r.ResponseMode,
		audience:     []string{s.audience},
	}
	if r.CodeChallenge != "" {
		req.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	s.requests[req.id] = req
	return req.clone(), nil
}

// pruneLocked forgets abandoned logins and expired tokens so a long dev run does not
// grow without bound.
func (s *storage) pruneLocked() {
	now := time.Now()
	for id, r := range s.requests {
		if now.Sub(r.created) > authRequestTTL {
			delete(s.requests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.requests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for id, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, id)
		}
	}
	for tok, t := range s.refresh {
		if now.After(t.expires) {
			delete(s.refresh, tok)
		}
	}
}

// AuthRequestByID returns a snapshot, so op never reads a request while login writes it.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return nil, errUnknownRequest
	}
	return req.clone(), nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or already used")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[id]; !ok {
		return errUnknownRequest
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest runs once tokens are issued, which also makes the code single-use.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, reqID := range s.codes {
		if reqID == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// CreateAccessToken records the token so userinfo and introspection can find it.
func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	clientID, err := requestClient(r)
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, t := s.issueLocked(r, clientID)
	return id, t.expires, nil
}

func requestClient(r op.TokenRequest) (string, error) {
	switch r := r.(type) {
	case *authRequest:
		return r.clientID, nil
	case *clientCredentialsRequest:
		return r.clientID, nil
	case *refreshRequest:
		return r.clientID, nil
	}
	return "", fmt.Errorf("unsupported token request %T", r)
}

func (s *storage) issueLocked(r op.TokenRequest, clientID string) (string, issuedToken) {
	id := uuid.NewString()
	t := issuedToken{
		subject:  r.GetSubject(),
		clientID: clientID,
		scopes:   slices.Clone(r.GetScopes()),
		audience: slices.Clone(r.GetAudience()),
		expires:  time.Now().Add(s.ttl),
	}
	s.tokens[id] = t
	return id, t
}

// refreshToken is an issued refresh token. It is used once: a refresh returns a new
// one and retires it, so a stolen copy works at most until its owner's next refresh.
type refreshToken struct {
	subject  string
	clientID string
	scopes   []string
	audience []string
	authTime time.Time
	amr      []string
	expires  time.Time
}

// CreateAccessAndRefreshTokens issues an access token and a new refresh token, for
// a login that asked for offline_access or for a refresh (current is then the
// refresh token used, which it retires).
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	clientID, err := requestClient(r)
	if err != nil {
		return "", "", time.Time{}, err
	}
	rt := refreshToken{
		subject: r.GetSubject(), clientID: clientID,
		scopes: slices.Clone(r.GetScopes()), audience: slices.Clone(r.GetAudience()),
		expires: time.Now().Add(s.refTTL),
	}
	switch r := r.(type) {
	case *authRequest:
		rt.authTime, rt.amr = r.GetAuthTime(), r.GetAMR()
	case *refreshRequest:
		rt.authTime, rt.amr = r.authTime, r.amr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" {
		if _, ok := s.refresh[current]; !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken // revoked meanwhile
		}
		delete(s.refresh, current)
	}
	id, t := s.issueLocked(r, clientID)
	token := randomString()
	s.refresh[token] = rt
	return id, token, t.expires, nil
}

// TokenRequestByRefreshToken returns the grant behind a live refresh token, or
// op.ErrInvalidRefreshToken.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok || time.Now().After(rt.expires) {
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshRequest{refreshToken: rt}, nil
}

// GetRefreshTokenInfo names the user and the token (its own id) of a refresh token
// of clientID, for revocation; op.ErrInvalidRefreshToken for anything else.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok || rt.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, token, nil
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.tokens, id)
		}
	}
	for tok, t := range s.refresh {
		if t.subject == userID && t.clientID == clientID {
			delete(s.refresh, tok)
		}
	}
	return nil
}

// RevokeToken revokes a refresh token at once (logout), or forgets an access token
// for userinfo and introspection: services verify JWTs offline, so they accept an
// access token until it expires (DefaultAccessTokenTTL is that window).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refresh[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refresh, tokenOrID)
		return nil
	}
	t, ok := s.tokens[tokenOrID]
	if !ok {
		return nil // unknown tokens count as revoked (RFC 7009)
	}
	if t.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	delete(s.tokens, tokenOrID)
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q not found", id)
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.authenticateClient(id, secret)
	return err
}

func (s *storage) authenticateClient(id, secret string) (*client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q not found", id)
	}
	if c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return nil, errors.New("invalid client secret")
	}
	return c, nil
}

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	return s.authenticateClient(id, secret)
}

// ClientCredentialsTokenRequest grants the requested scopes the client may hold, or
// all of them when none were requested.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q not found", id)
	}
	granted := slices.Clone(c.Scopes)
	if len(scopes) > 0 {
		granted = slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !slices.Contains(c.Scopes, sc) })
	}
	return &clientCredentialsRequest{clientID: id, scopes: granted, audience: []string{s.audience}}, nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	s.setUserinfo(info, r.GetSubject(), scopes)
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	t, err := s.liveToken(tokenID)
	if err != nil {
		return err
	}
	s.setUserinfo(info, t.subject, t.scopes)
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, _, _ string) error {
	t, err := s.liveToken(tokenID)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	s.setUserinfo(info, t.subject, t.scopes)
	resp.SetUserInfo(info)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Audience = t.audience
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

func (s *storage) liveToken(id string) (issuedToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if !ok || time.Now().After(t.expires) {
		return issuedToken{}, errors.New("token invalid or expired")
	}
	return t, nil
}

// setUserinfo fills ID token and userinfo claims by scope, as OIDC Core 5.4 maps them.
func (s *storage) setUserinfo(info *oidc.UserInfo, subject string, scopes []string) {
	info.Subject = subject
	u, ok := s.users[subject]
	if !ok {
		return // a client credentials subject has no profile
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = true
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.PreferredUsername = u.Username
	}
	info.AppendClaims("roles", nonNil(u.Roles))
}

// GetPrivateClaimsFromRequest adds the claims services read to JWT access tokens.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, r op.TokenRequest, _ []string) (map[string]any, error) {
	if cc, ok := r.(*clientCredentialsRequest); ok {
		return map[string]any{
			"scope": strings.Join(cc.scopes, " "),
			"roles": nonNil(s.clients[cc.clientID].Roles),
		}, nil
	}
	return s.userClaims(r.GetSubject(), r.GetScopes()), nil
}

// GetPrivateClaimsFromScopes is op's fallback when GetPrivateClaimsFromRequest is
// absent; it is kept equivalent for users.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, scopes []string) (map[string]any, error) {
	return s.userClaims(userID, scopes), nil
}

func (s *storage) userClaims(subject string, scopes []string) map[string]any {
	claims := map[string]any{"scope": strings.Join(scopes, " ")}
	u := s.users[subject]
	claims["roles"] = nonNil(u.Roles)
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		claims["email"] = u.Email
	}
	if slices.Contains(scopes, oidc.ScopeProfile) && u.Name != "" {
		claims["name"] = u.Name
	}
	return claims
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetKeyByIDAndClientID would serve private_key_jwt and the JWT profile grant,
// neither of which the dev issuer offers.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("client keys are not supported by the dev issuer")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported by the dev issuer")
}

func (s *storage) Health(context.Context) error { return nil }

// authRequest is one authorization request, from /authorize to the code exchange.
type authRequest struct {
	id           string
	created      time.Time
	clientID     string
	redirectURI  string
	state        string
	nonce        string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	audience     []string

	subject  string
	authTime time.Time
	done     bool
}

var _ op.AuthRequest = (*authRequest)(nil)

func (r *authRequest) clone() *authRequest {
	c := *r
	c.scopes = slices.Clone(r.scopes)
	c.audience = slices.Clone(r.audience)
	return &c
}

func (r *authRequest) GetID() string          { return r.id }
func (r *authRequest) GetACR() string         { return "" }
func (r *authRequest) GetAMR() []string       { return []string{"pwd"} }
func (r *authRequest) GetAuthTime() time.Time { return r.authTime }
func (r *authRequest) GetClientID() string    { return r.clientID }
func (r *authRequest) GetNonce() string       { return r.nonce }
func (r *authRequest) GetRedirectURI() string { return r.redirectURI }
func (r *authRequest) GetScopes() []string    { return r.scopes }
func (r *authRequest) GetState() string       { return r.state }
func (r *authRequest) GetSubject() string     { return r.subject }
func (r *authRequest) Done() bool             { return r.done }

// GetAudience is the API audience. op adds the client id for ID tokens; access
// tokens carry the API audience alone, plus the client in "client_id".
func (r *authRequest) GetAudience() []string                 { return r.audience }
func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.challenge }
func (r *authRequest) GetResponseType() oidc.ResponseType    { return r.responseType }
func (r *authRequest) GetResponseMode() oidc.ResponseMode    { return r.responseMode }

// clientCredentialsRequest is a client credentials grant; the client is the subject.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
	audience []string
}

var _ op.TokenRequest = (*clientCredentialsRequest)(nil)

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return r.audience }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// refreshRequest is a refresh_token grant: the grant of the login it continues.
type refreshRequest struct{ refreshToken }

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string       { return r.amr }
func (r *refreshRequest) GetAudience() []string  { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time { return r.authTime }
func (r *refreshRequest) GetClientID() string    { return r.clientID }
func (r *refreshRequest) GetScopes() []string    { return r.scopes }
func (r *refreshRequest) GetSubject() string     { return r.subject }

// SetCurrentScopes narrows the grant when a refresh asks for fewer scopes.
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }

// client adapts a configured Client to op.Client.
type client struct {
	Client
	loginURL string
	ttl      time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.ID }
func (c *client) RedirectURIs() []string              { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) LoginURL(id string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(id)
}
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return c.ttl }

// DevMode relaxes op's redirect URI rules (http redirects for public clients).
func (c *client) DevMode() bool { return true }

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	if len(c.Client.RedirectURIs) == 0 {
		return nil
	}
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	var g []oidc.GrantType
	if len(c.Client.RedirectURIs) > 0 {
		// A login that asks for offline_access gets a refresh token.
		g = append(g, oidc.GrantTypeCode, oidc.GrantTypeRefreshToken)
	}
	if c.ClientCredentials {
		g = append(g, oidc.GrantTypeClientCredentials)
	}
	return g
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(c.Scopes, scope) }

// IDTokenUserinfoClaimsAssertion puts email and name in the ID token even in the
// code flow, so the gateway needs no userinfo round trip.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// signingKey is the issuer's RS256 key; publicKey is its JWKS face.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }
