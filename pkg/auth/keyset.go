package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MinKeyRefresh is the shortest time between two fetches of the issuer's keys. A
// token naming a key id the verifier has not seen makes it fetch the key set again
// (that is how it learns a rotated key), but no more often than this: a stream of
// tokens with made-up key ids must not become a stream of requests to the issuer.
const MinKeyRefresh = 30 * time.Second

// jwksKeySet verifies signatures with the keys the issuer publishes at its JWKS URI.
// It fetches them on first use and again only for a token whose key id it does not
// know (and no more often than MinKeyRefresh after a successful fetch); a token
// under a known key id whose signature does not verify is refused without a fetch.
// go-oidc's RemoteKeySet fetched again on every signature that did not verify, so
// each forged token cost a request to the issuer.
type jwksKeySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // of the last successful fetch; zero before it

	// fetching admits one fetch at a time, yet lets waiters give up with their
	// context (a mutex would not).
	fetching chan struct{}
}

func newJWKSKeySet(url string, client *http.Client, now func() time.Time) *jwksKeySet {
	return &jwksKeySet{url: url, client: client, now: now, fetching: make(chan struct{}, 1)}
}

var joseAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(allowedAlgs))
	for i, a := range allowedAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// VerifySignature implements oidc.KeySet. Only a failure to fetch the keys comes back
// wrapped (fetchAwareKeySet tells a dead issuer from a bad token by that).
func (k *jwksKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, joseAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys, fetched := k.keys, k.fetched
	k.mu.Unlock()
	if payload, known := verifyWith(jws, keys, kid); payload != nil {
		return payload, nil
	} else if known {
		return nil, errors.New("signature does not verify under the issuer's key")
	}
	if !fetched.IsZero() && k.now().Sub(fetched) < MinKeyRefresh {
		return nil, errors.New("no such signing key (keys fetched moments ago)")
	}
	keys, err = k.refresh(ctx, fetched)
	if err != nil {
		return nil, fmt.Errorf("fetching keys: %w", err)
	}
	if payload, _ := verifyWith(jws, keys, kid); payload != nil {
		return payload, nil
	}
	return nil, errors.New("signature does not verify under any of the issuer's keys")
}

// verifyWith returns the payload if a key of keys with id kid (any key when kid is
// empty) verifies jws, and whether keys hold a key with that id.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, known bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		known = kid != ""
		if p, err := jws.Verify(&key); err == nil {
			return p, known
		}
	}
	return nil, known
}

// refresh fetches the key set unless another caller did since seen, and returns the
// keys held afterwards.
func (k *jwksKeySet) refresh(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, error) {
	select {
	case k.fetching <- struct{}{}:
		defer func() { <-k.fetching }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	k.mu.Lock()
	if !k.fetched.Equal(seen) {
		keys := k.keys
		k.mu.Unlock()
		return keys, nil
	}
	k.mu.Unlock()

	keys, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keys, k.fetched = keys, k.now()
	k.mu.Unlock()
	return keys, nil
}

// fetch reads the JWKS document. Keys this package cannot use (another key type,
// encryption keys) are skipped rather than failing the whole set.
func (k *jwksKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if json.Unmarshal(raw, &key) != nil || key.Use == "enc" || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: no usable signing key", k.url)
	}
	return keys, nil
}
