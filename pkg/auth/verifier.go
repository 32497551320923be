package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// DefaultLeeway is the clock skew tolerated on "exp" and "nbf" when
// VerifierConfig.Leeway is zero.
const DefaultLeeway = 10 * time.Second

// DefaultAudience is the API audience eventshop services expect in "aud" when
// VerifierConfig.Audience is empty; the dev issuer puts it in every access token.
const DefaultAudience = "eventshop"

// Errors returned (wrapped) by Verify. Their messages are safe to show a caller; the
// wrapped detail is for logs only.
var (
	ErrMissingToken         = errors.New("missing bearer token")
	ErrInvalidToken         = errors.New("invalid token")
	ErrUnsupportedAlgorithm = errors.New("token signing algorithm not allowed")
	ErrInvalidSignature     = errors.New("token signature invalid")
	ErrWrongIssuer          = errors.New("token has wrong issuer")
	ErrWrongAudience        = errors.New("token has wrong audience")
	ErrTokenExpired         = errors.New("token expired")
	ErrTokenNotYetValid     = errors.New("token not yet valid")
	// ErrIssuerUnavailable means the token could not be checked because discovery or
	// the key fetch failed; the token itself may be fine, so a retry can succeed.
	ErrIssuerUnavailable = errors.New("token issuer unavailable")
)

// allowedAlgs are the only signing algorithms accepted. Asymmetric only: with HS*
// anyone holding the verification key could mint tokens, and "none" signs nothing.
var allowedAlgs = []string{oidc.RS256, oidc.ES256}

// VerifierConfig configures NewVerifier.
type VerifierConfig struct {
	// Issuer is the OIDC issuer URL; tokens must carry exactly this "iss". Required.
	Issuer string
	// Audience must be one of the token's "aud" values. Defaults to DefaultAudience.
	Audience string
	// Leeway is the clock skew tolerated on "exp" and "nbf". Zero means DefaultLeeway;
	// a negative value means none.
	Leeway time.Duration
	// Now returns the current time; tests move it. Defaults to time.Now.
	Now func() time.Time
	// HTTPClient fetches discovery and keys. Defaults to a client with a 10s timeout.
	HTTPClient *http.Client
	// CacheSize bounds how many verified tokens are remembered, least recently used
	// evicted first. Zero means DefaultCacheSize; a negative value turns the cache off.
	CacheSize int
	// CacheTTL caps how long a verified token is answered from the cache; never
	// beyond the token's own expiry. Zero means DefaultCacheTTL.
	CacheTTL time.Duration
}

// Verifier checks bearer tokens against one issuer and audience. It is safe for
// concurrent use.
type Verifier struct {
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	client   *http.Client

	// discovering admits one discovery attempt at a time, yet lets waiters give up
	// when their own context ends (a mutex would not).
	discovering chan struct{}
	idv         atomic.Pointer[oidc.IDTokenVerifier]

	cache *tokenCache // nil when turned off
}

// NewVerifier returns a Verifier for cfg. It does no network I/O: discovery happens
// on the first Verify (or Ready) and is retried on later calls until it succeeds. In
// the all-in-one runner the issuer and the services start together, and a service
// must not die because the issuer answered a few hundred milliseconds late; until it
// answers, Verify fails with ErrIssuerUnavailable. Keys are cached and fetched again
// only for a token under a key id not seen yet, at most once per MinKeyRefresh;
// concurrent fetches are merged into one. Tokens that pass every check are remembered until they expire (at most
// CacheTTL, at most CacheSize of them), so the same token is verified once, not at
// every call and every hop; see tokenCache. NewVerifier returns an error if Issuer is
// empty or not an http(s) URL.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: verifier needs an issuer URL")
	}
	if !strings.HasPrefix(cfg.Issuer, "https://") && !strings.HasPrefix(cfg.Issuer, "http://") {
		return nil, fmt.Errorf("auth: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	var cache *tokenCache
	if cfg.CacheSize > 0 {
		cache = newTokenCache(cfg.CacheSize, cfg.CacheTTL)
	}
	return &Verifier{
		cache:       cache,
		issuer:      cfg.Issuer,
		audience:    cfg.Audience,
		leeway:      cfg.Leeway,
		now:         cfg.Now,
		client:      cfg.HTTPClient,
		discovering: make(chan struct{}, 1),
	}, nil
}

// Issuer returns the issuer URL tokens must carry.
func (v *Verifier) Issuer() string { return v.issuer }

// Audience returns the audience tokens must carry.
func (v *Verifier) Audience() string { return v.audience }

// Ready performs discovery now if it has not succeeded yet, for callers that want to
// fail fast or report readiness. It returns an error wrapping ErrIssuerUnavailable
// when the issuer cannot be discovered, or ctx.Err().
func (v *Verifier) Ready(ctx context.Context) error {
	_, err := v.tokenVerifier(ctx)
	return err
}

func (v *Verifier) tokenVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if idv := v.idv.Load(); idv != nil {
		return idv, nil
	}
	select {
	case v.discovering <- struct{}{}:
		defer func() { <-v.discovering }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if idv := v.idv.Load(); idv != nil {
		return idv, nil // another caller discovered while we waited
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %w", ErrIssuerUnavailable, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return nil, fmt.Errorf("%w: discovery document has no jwks_uri", ErrIssuerUnavailable)
	}
	keys := fetchAwareKeySet{newJWKSKeySet(meta.JWKSURI, v.client, v.now)}
	idv := oidc.NewVerifier(v.issuer, keys, &oidc.Config{
		SupportedSigningAlgs: allowedAlgs,
		// Audience, expiry and nbf are checked in Verify, which needs typed errors and
		// a leeway; go-oidc offers neither.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
	})
	v.idv.Store(idv)
	return idv, nil
}

// fetchFailedKey marks, in the context of one verification, that the key set could
// not be fetched. go-oidc flattens key set errors into text, so the mark is how a
// dead issuer (retryable) is told apart from a bad signature (final).
type fetchFailedKey struct{}

// fetchAwareKeySet records key fetch failures of the wrapped key set.
type fetchAwareKeySet struct{ inner oidc.KeySet }

var _ oidc.KeySet = fetchAwareKeySet{}

func (k fetchAwareKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.inner.VerifySignature(ctx, jwt)
	// jwksKeySet wraps (%w) only fetch failures; a signature that no key verifies
	// and a malformed token come back as plain errors.
	if err != nil && errors.Unwrap(err) != nil {
		if flag, ok := ctx.Value(fetchFailedKey{}).(*atomic.Bool); ok {
			flag.Store(true)
		}
	}
	return payload, err
}

// tokenClaims is the part of the JWT payload Verify reads.
type tokenClaims struct {
	Issuer    string     `json:"iss"`
	Subject   string     `json:"sub"`
	Audience  stringList `json:"aud"`
	Expiry    *float64   `json:"exp"`
	NotBefore *float64   `json:"nbf"`
	Scope     stringList `json:"scope"`
	Scp       stringList `json:"scp"`
	Roles     stringList `json:"roles"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	ClientID  string     `json:"client_id"`
	AZP       string     `json:"azp"`
}

// stringList accepts a JSON string (split on spaces, as "scope" is) or an array.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = strings.Fields(s)
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("want a string or an array of strings: %w", err)
	}
	*l = a
	return nil
}

// Verify checks rawToken and returns its claims. It returns an error wrapping
// ErrMissingToken (empty token), ErrInvalidToken (malformed, no subject or expiry),
// ErrUnsupportedAlgorithm (not RS256/ES256), ErrWrongIssuer, ErrInvalidSignature,
// ErrWrongAudience, ErrTokenExpired, ErrTokenNotYetValid, or ErrIssuerUnavailable
// (discovery or key fetch failed; worth a retry). A token that passed every check
// before is answered from the cache while it is still valid; the claims returned are
// the caller's own copy either way.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Claims, error) {
	if rawToken == "" {
		return nil, ErrMissingToken
	}
	if v.cache != nil {
		if c, ok := v.cache.get(rawToken, v.now()); ok {
			return c, nil
		}
	}
	// Cheap checks on the unverified token first: a token for another issuer or with
	// a forbidden algorithm must not make us fetch keys.
	if err := v.precheck(rawToken); err != nil {
		return nil, err
	}
	idv, err := v.tokenVerifier(ctx)
	if err != nil {
		return nil, err
	}
	var fetchFailed atomic.Bool
	tok, err := idv.Verify(context.WithValue(ctx, fetchFailedKey{}, &fetchFailed), rawToken)
	if err != nil {
		if fetchFailed.Load() {
			return nil, fmt.Errorf("%w: %w", ErrIssuerUnavailable, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	var tc tokenClaims
	if err := tok.Claims(&tc); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	if !slices.Contains(tc.Audience, v.audience) {
		return nil, fmt.Errorf("%w: want %q, got %q", ErrWrongAudience, v.audience, []string(tc.Audience))
	}
	now := v.now()
	if tc.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	exp := unixTime(*tc.Expiry)
	if now.After(exp.Add(v.leeway)) {
		return nil, fmt.Errorf("%w: at %s", ErrTokenExpired, exp.UTC().Format(time.RFC3339))
	}
	var validFrom time.Time // as the nbf check below sees it; zero without nbf
	if tc.NotBefore != nil {
		nbf := unixTime(*tc.NotBefore)
		if now.Add(v.leeway).Before(nbf) {
			return nil, fmt.Errorf("%w: until %s", ErrTokenNotYetValid, nbf.UTC().Format(time.RFC3339))
		}
		validFrom = nbf.Add(-v.leeway)
	}
	if tc.Subject == "" {
		return nil, fmt.Errorf("%w: no sub claim", ErrInvalidToken)
	}
	c := &Claims{
		Subject:  tc.Subject,
		Scopes:   mergeScopes(tc.Scope, tc.Scp),
		Roles:    tc.Roles,
		Email:    tc.Email,
		Name:     tc.Name,
		ClientID: tc.ClientID,
		Token:    rawToken,
	}
	if c.ClientID == "" {
		c.ClientID = tc.AZP
	}
	if v.cache != nil {
		// Expiry without the leeway: the cache never stretches a token's life.
		v.cache.put(c, now, validFrom, exp)
	}
	return c, nil
}

// precheck decodes the unverified header and payload to reject forbidden
// algorithms and foreign issuers before any key is looked up.
func (v *Verifier) precheck(raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("%w: header: %w", ErrInvalidToken, err)
	}
	if !slices.Contains(allowedAlgs, header.Alg) {
		return fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, header.Alg)
	}
	var payload struct {
		Issuer string `json:"iss"`
	}
	if err := decodeSegment(parts[1], &payload); err != nil {
		return fmt.Errorf("%w: payload: %w", ErrInvalidToken, err)
	}
	if payload.Issuer != v.issuer {
		return fmt.Errorf("%w: want %q, got %q", ErrWrongIssuer, v.issuer, payload.Issuer)
	}
	return nil
}

func decodeSegment(seg string, into any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

func unixTime(secs float64) time.Time {
	whole := int64(secs)
	return time.Unix(whole, int64((secs-float64(whole))*1e9))
}

func mergeScopes(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
