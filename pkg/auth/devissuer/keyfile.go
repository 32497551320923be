package devissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// loadOrCreateKey returns the signing key kept in path, creating it (readable by the
// owner only) when the file does not exist. With no path it makes a key for this run
// only. A file that exists but holds no RSA private key is an error, never replaced:
// replacing it would sign out everyone who holds a token.
func loadOrCreateKey(path string) (signingKey, error) {
	if path == "" {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return signingKey{}, fmt.Errorf("devissuer: signing key: %w", err)
		}
		return newSigningKey(key)
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("devissuer: signing key %s: %w", path, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return signingKey{}, fmt.Errorf("devissuer: signing key %s: no PEM \"PRIVATE KEY\" block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return signingKey{}, fmt.Errorf("devissuer: signing key %s: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return signingKey{}, fmt.Errorf("devissuer: signing key %s: a %T, want RSA", path, parsed)
	}
	return newSigningKey(key)
}

func createKey(path string) (signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, fmt.Errorf("devissuer: signing key: %w", err)
	}
	if err := writeKey(path, key); err != nil {
		return signingKey{}, fmt.Errorf("devissuer: signing key %s: %w", path, err)
	}
	return newSigningKey(key)
}

// writeKey writes key to a temporary file beside path and renames it into place, so
// a crash never leaves half a key behind.
func writeKey(path string, key *rsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".issuer-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	err = tmp.Chmod(0o600)
	if err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newSigningKey names the key by a digest of its public half, so the same key keeps
// the same key id across restarts and verifiers that cached it need no new fetch.
func newSigningKey(key *rsa.PrivateKey) (signingKey, error) {
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return signingKey{}, fmt.Errorf("devissuer: signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	return signingKey{id: base64.RawURLEncoding.EncodeToString(sum[:12]), key: key}, nil
}
