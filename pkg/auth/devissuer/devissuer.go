// Package devissuer is an in-process OpenID Provider for local runs and tests, built
// on zitadel's op package: discovery, JWKS, authorization code + PKCE, client
// credentials and JWT access tokens, over plain HTTP on loopback. Local use only.
//
// It serves HTTP, not HTTPS (op.WithAllowInsecure), keeps everything in memory, checks
// plain-text demo passwords and generates a fresh RS256 key at every start, so tokens
// die with the process. Never expose it beyond a developer's machine or a test.
//
// Access tokens are JWTs with "aud" = the API audience (default "eventshop"),
// "sub", "client_id", "scope" (space separated), "roles" (array), and "email" /
// "name" when the email / profile scopes were granted — what package auth reads.
//
// Default users (DefaultUsers), all with scopes openid profile email cart
// orders:read orders:write:
//
//	alice / alice-password
//	bob   / bob-password
//	admin / admin-password   (role admin)
//
// Default clients (DefaultClients):
//
//	storefront / storefront-secret  confidential; authorization code + PKCE; redirect
//	                                URIs http://localhost:8080/auth/callback and
//	                                http://127.0.0.1:8080/auth/callback
//	shop-cli   / shop-cli-secret    confidential; client credentials; the token's
//	                                subject is "shop-cli", role service
package devissuer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// DefaultAudience is the API audience put in access tokens when Config.Audience is
// empty; it matches auth.DefaultAudience.
const DefaultAudience = "eventshop"

// DefaultAccessTokenTTL is the access token lifetime when Config.AccessTokenTTL is
// zero. Services verify tokens offline, so a token stays usable until it expires
// even after logout: this is that window. Clients that asked for offline_access
// (the storefront does) renew it with their refresh token.
const DefaultAccessTokenTTL = 10 * time.Minute

// DefaultRefreshTokenTTL is how long a refresh token may be used when
// Config.RefreshTokenTTL is zero. Each use returns a new one and retires the old;
// logout revokes it at once.
const DefaultRefreshTokenTTL = 12 * time.Hour

// Demo scopes granted to the default users and clients.
var demoScopes = []string{"openid", "profile", "email", "cart", "orders:read", "orders:write"}

// User is a demo account that can log in with a password.
type User struct {
	// Username is the login name and also the token subject.
	Username string
	Password string
	Email    string
	Name     string
	// Scopes the user may be granted; requested scopes outside this list are dropped
	// at login ("openid" is always kept).
	Scopes []string
	// Roles go into the "roles" claim.
	Roles []string
}

// Client is an OAuth client registered with the issuer.
type Client struct {
	ID string
	// Secret authenticates the client at the token endpoint. Empty makes a public
	// client, which must use PKCE.
	Secret string
	// RedirectURIs enable the authorization code flow; the redirect_uri of a request
	// must be one of them exactly.
	RedirectURIs []string
	// ClientCredentials enables the client credentials grant; the token's subject is
	// the client ID.
	ClientCredentials bool
	// Scopes the client may request beyond openid/profile/email; a client credentials
	// request without scopes gets all of them.
	Scopes []string
	// Roles go into the "roles" claim of client credentials tokens.
	Roles []string
}

// DefaultUsers returns the demo users alice, bob and admin.
func DefaultUsers() []User {
	return []User{
		{Username: "alice", Password: "alice-password", Email: "alice@example.com", Name: "Alice Example", Scopes: slices.Clone(demoScopes)},
		{Username: "bob", Password: "bob-password", Email: "bob@example.com", Name: "Bob Example", Scopes: slices.Clone(demoScopes)},
		{Username: "admin", Password: "admin-password", Email: "admin@example.com", Name: "Shop Admin", Scopes: slices.Clone(demoScopes), Roles: []string{"admin"}},
	}
}

// The demo storefront client's credentials; dev use only.
const (
	StorefrontClientID = "storefront"
	StorefrontSecret   = "storefront-secret"
)

// DefaultClients returns the storefront and shop-cli clients. Change the storefront's
// RedirectURIs when the gateway listens elsewhere.
func DefaultClients() []Client {
	return []Client{
		{
			ID:           StorefrontClientID,
			Secret:       StorefrontSecret,
			RedirectURIs: []string{"http://localhost:8080/auth/callback", "http://127.0.0.1:8080/auth/callback"},
			Scopes:       slices.Clone(demoScopes),
		},
		{
			ID:                "shop-cli",
			Secret:            "shop-cli-secret",
			ClientCredentials: true,
			Scopes:            []string{"cart", "orders:read", "orders:write"},
			Roles:             []string{"service"}, // auth.RoleService
		},
	}
}

// Config configures Start.
type Config struct {
	// Addr is the listen address. Defaults to 127.0.0.1:0 (a free loopback port).
	Addr string
	// Issuer is the public issuer URL, for when the issuer is reached through a proxy.
	// Defaults to http://<bound address>.
	Issuer string
	// Audience is put in the "aud" of every access token. Defaults to DefaultAudience.
	Audience string
	// Users defaults to DefaultUsers().
	Users []User
	// Clients defaults to DefaultClients().
	Clients []Client
	// AccessTokenTTL defaults to DefaultAccessTokenTTL.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL defaults to DefaultRefreshTokenTTL. Refresh tokens are kept in
	// memory: a restart of the issuer ends them (the user logs in again once the
	// access token expires).
	RefreshTokenTTL time.Duration
	// KeyFile keeps the signing key (PKCS#8 PEM, mode 0600), created on first start:
	// tokens issued before a restart stay valid after it. Empty means a new key at
	// every start, which signs everyone out whenever the issuer restarts.
	KeyFile string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Issuer is a running dev OpenID Provider.
type Issuer struct {
	url     string
	handler http.Handler
	srv     *http.Server
	store   *storage
	logger  *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr and serves the provider until Close. ctx bounds start-up
// only. It returns an error if the configuration is invalid (duplicate or nameless
// users or clients) or the address cannot be bound.
func Start(ctx context.Context, cfg Config) (*Issuer, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Users == nil {
		cfg.Users = DefaultUsers()
	}
	if cfg.Clients == nil {
		cfg.Clients = DefaultClients()
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}

	key, err := loadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	var cryptoKey [32]byte // op requires it; our opaque refresh tokens are random, not encrypted
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("devissuer: crypto key: %w", err)
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("devissuer: listen %s: %w", cfg.Addr, err)
	}
	issuerURL := strings.TrimSuffix(cfg.Issuer, "/")
	if issuerURL == "" {
		issuerURL = "http://" + ln.Addr().String()
	}

	store := newStorage(cfg, issuerURL, key)
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       store.supportedScopes(),
		SupportedClaims:       append(slices.Clone(op.DefaultSupportedClaims), "scope", "roles", "client_id"),
	}, store, op.StaticIssuer(issuerURL),
		op.WithAllowInsecure(), // dev only: plain HTTP on loopback
		op.WithLogger(cfg.Logger),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devissuer: provider: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle(loginPath, newLoginHandler(store, op.AuthCallbackURL(provider), op.NewIssuerInterceptor(provider.IssuerFromRequest)))
	mux.Handle("/", provider)

	iss := &Issuer{
		url:     issuerURL,
		handler: mux,
		srv:     &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		store:   store,
		logger:  cfg.Logger,
	}
	go func() {
		if err := iss.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			iss.logger.Error("dev OIDC issuer stopped", "error", err)
		}
	}()
	iss.logger.InfoContext(ctx, "dev OIDC issuer started (local use only)", "issuer", issuerURL, "listen", ln.Addr().String())
	return iss, nil
}

func validate(cfg Config) error {
	var errs []error
	users := map[string]bool{}
	for _, u := range cfg.Users {
		switch {
		case u.Username == "":
			errs = append(errs, errors.New("user without username"))
		case users[u.Username]:
			errs = append(errs, fmt.Errorf("duplicate user %q", u.Username))
		}
		users[u.Username] = true
	}
	clients := map[string]bool{}
	for _, c := range cfg.Clients {
		switch {
		case c.ID == "":
			errs = append(errs, errors.New("client without id"))
		case clients[c.ID]:
			errs = append(errs, fmt.Errorf("duplicate client %q", c.ID))
		case len(c.RedirectURIs) == 0 && !c.ClientCredentials:
			errs = append(errs, fmt.Errorf("client %q has neither redirect URIs nor client credentials", c.ID))
		case c.ClientCredentials && c.Secret == "":
			errs = append(errs, fmt.Errorf("client %q uses client credentials without a secret", c.ID))
		}
		clients[c.ID] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("devissuer: invalid config: %w", err)
	}
	return nil
}

// URL returns the issuer URL (what tokens carry in "iss" and verifiers discover).
func (i *Issuer) URL() string { return i.url }

// Audience returns the API audience put in access tokens.
func (i *Issuer) Audience() string { return i.store.audience }

// Handler returns the provider's HTTP handler, for mounting it in another server
// as well; the issuer URL stays the one it was started with.
func (i *Issuer) Handler() http.Handler { return i.handler }

// Close stops the server, letting in-flight requests finish for up to five seconds.
// It returns the error of the shutdown; later calls return the same.
func (i *Issuer) Close() error {
	i.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := i.srv.Shutdown(ctx); err != nil {
			i.closeErr = errors.Join(err, i.srv.Close())
		}
	})
	return i.closeErr
}

// RefreshTokens is how many live refresh tokens subject holds: the sessions that
// can still renew their access without a login.
func (i *Issuer) RefreshTokens(subject string) int {
	i.store.mu.Lock()
	defer i.store.mu.Unlock()
	n := 0
	for _, t := range i.store.refresh {
		if t.subject == subject && time.Now().Before(t.expires) {
			n++
		}
	}
	return n
}
