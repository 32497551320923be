package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"

	"github.com/eventshop/eventshop/pkg/messaging"
)

// SessionBucket is the JetStream key-value bucket the storefront's sessions and
// logins in flight are kept in when the gateway has NATS (Deps.JetStream).
const SessionBucket = "gateway_sessions"

// errNoRecord is a backend's answer for a key it does not hold.
var errNoRecord = errors.New("no such record")

// errRecordChanged is a backend's answer to a write whose expected revision is no
// longer the key's: another request (or gateway instance) wrote it first.
var errRecordChanged = errors.New("record changed")

// sessionBackend keeps the records of sessions and logins in flight. Revisions make
// writes compare-and-set, so two gateway instances never overwrite each other's
// renewal of a session's tokens.
type sessionBackend interface {
	// load returns the value and revision of key, or errNoRecord.
	load(ctx context.Context, key string) ([]byte, uint64, error)
	// save writes key when its revision is still rev (0: when absent) and returns
	// the new revision, or errRecordChanged.
	save(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)
	// remove deletes key; removing an absent key is not an error. With rev > 0 it
	// deletes only while rev is the key's revision, else errRecordChanged.
	remove(ctx context.Context, key string, rev uint64) error
}

// sessionRecord is what is stored of a session: everything but the user's claims,
// which are read again from the access token whenever the session is loaded.
type sessionRecord struct {
	// Subject is the user the session was created for: every access token it
	// carries later, renewed or not, must be for that user.
	Subject string        `json:"subject"`
	CSRF    string        `json:"csrf"`
	Expires time.Time     `json:"expires"`
	Flash   string        `json:"flash,omitempty"`
	Token   *oauth2.Token `json:"token"`
}

// loginRecord is what is stored of a login in flight (pendingLogin).
type loginRecord struct {
	Redirect string    `json:"redirect"`
	Verifier string    `json:"verifier"`
	Nonce    string    `json:"nonce"`
	Next     string    `json:"next"`
	Expires  time.Time `json:"expires"`
}

// sessionStore keeps sessions and logins in flight in a backend, where every gateway
// instance and the next start of this one find them. A session id is a bearer
// secret, so the backend's keys are its SHA-256, never the id itself.
type sessionStore struct {
	ttl     time.Duration
	backend sessionBackend
	logger  *slog.Logger
	// renewing makes the requests of one session in this process wait for one
	// renewal of its access token instead of each spending the refresh token,
	// which the issuer accepts once. Sessions share these locks by the hash of
	// their key, so they stay bounded however many sessions come and go; two
	// sessions on one lock only renew one after the other.
	renewing [64]sync.Mutex
}

func newSessionStore(ttl time.Duration, backend sessionBackend, logger *slog.Logger) *sessionStore {
	return &sessionStore{ttl: ttl, backend: backend, logger: logger}
}

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "s." + hex.EncodeToString(sum[:])
}

func loginKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return "l." + hex.EncodeToString(sum[:])
}

// create stores a new session of subject for tok.
func (s *sessionStore) create(ctx context.Context, subject string, tok *oauth2.Token) (*session, error) {
	exp := time.Now().Add(s.ttl)
	if tok.RefreshToken == "" && !tok.Expiry.IsZero() && tok.Expiry.Before(exp) {
		exp = tok.Expiry // nothing to renew it with
	}
	sess := &session{id: randomToken(), rec: sessionRecord{Subject: subject, CSRF: randomToken(), Expires: exp, Token: tok}}
	if err := s.write(ctx, sess); err != nil {
		return nil, fmt.Errorf("store session: %w", err)
	}
	return sess, nil
}

// get loads session id; nil (and no error) when there is none or it has expired.
// The session's claims are not set: the caller verifies its access token.
func (s *sessionStore) get(ctx context.Context, id string) (*session, error) {
	val, rev, err := s.backend.load(ctx, sessionKey(id))
	if errors.Is(err, errNoRecord) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sess := &session{id: id, rev: rev}
	if err := json.Unmarshal(val, &sess.rec); err != nil || sess.rec.Token == nil {
		return nil, fmt.Errorf("stored session does not decode: %v", err)
	}
	if time.Now().After(sess.rec.Expires) {
		s.delete(ctx, id)
		return nil, nil
	}
	return sess, nil
}

// write saves sess at its revision and records the new one.
func (s *sessionStore) write(ctx context.Context, sess *session) error {
	val, err := json.Marshal(sess.rec)
	if err != nil {
		return err
	}
	rev, err := s.backend.save(ctx, sessionKey(sess.id), val, sess.rev)
	if err != nil {
		return err
	}
	sess.rev = rev
	return nil
}

// delete ends session id. A record that could not be removed is logged: the
// session still ends at its record's expiry, and its refresh token is revoked at
// logout either way.
func (s *sessionStore) delete(ctx context.Context, id string) {
	if err := s.backend.remove(ctx, sessionKey(id), 0); err != nil {
		s.logger.WarnContext(ctx, "session not removed", "error", err)
	}
}

// setFlash keeps a one-time message for the session's next page. Best effort: the
// change it reports is made either way, so a message that could not be stored is
// logged and not shown.
func (s *sessionStore) setFlash(ctx context.Context, sess *session, msg string) {
	if err := s.update(ctx, sess, func(r *sessionRecord) { r.Flash = msg }); err != nil {
		s.logger.WarnContext(ctx, "flash message not stored", "error", err)
	}
}

// popFlash returns the session's one-time message and forgets it.
func (s *sessionStore) popFlash(ctx context.Context, sess *session) string {
	msg := sess.rec.Flash
	if msg == "" {
		return ""
	}
	sess.rec.Flash = ""
	if err := s.update(ctx, sess, func(r *sessionRecord) { r.Flash = "" }); err != nil {
		return "" // shown once at most: better lost than shown on every page
	}
	return msg
}

// update applies change to the stored session, reloading it when another request
// wrote it since it was loaded.
func (s *sessionStore) update(ctx context.Context, sess *session, change func(*sessionRecord)) error {
	for range 5 {
		change(&sess.rec)
		err := s.write(ctx, sess)
		if !errors.Is(err, errRecordChanged) {
			return err
		}
		fresh, err := s.get(ctx, sess.id)
		if err != nil {
			return err
		}
		if fresh == nil {
			return errNoRecord
		}
		sess.rec, sess.rev = fresh.rec, fresh.rev
	}
	return errRecordChanged
}

// renewal returns the lock that serialises the renewals of session id in this
// process.
func (s *sessionStore) renewal(id string) *sync.Mutex {
	sum := sha256.Sum256([]byte(id))
	return &s.renewing[int(sum[0])%len(s.renewing)]
}

func (s *sessionStore) addPending(ctx context.Context, state string, p pendingLogin) error {
	val, err := json.Marshal(loginRecord{Redirect: p.redirect, Verifier: p.verifier, Nonce: p.nonce, Next: p.next, Expires: p.expires})
	if err != nil {
		return err
	}
	_, err = s.backend.save(ctx, loginKey(state), val, 0)
	return err
}

// takePending returns and forgets the login for state; ok is false when unknown,
// expired or already taken (by any instance), so a state is usable once.
func (s *sessionStore) takePending(ctx context.Context, state string) (pendingLogin, bool) {
	key := loginKey(state)
	val, rev, err := s.backend.load(ctx, key)
	if err != nil {
		return pendingLogin{}, false
	}
	if err := s.backend.remove(ctx, key, rev); err != nil {
		return pendingLogin{}, false
	}
	var r loginRecord
	if err := json.Unmarshal(val, &r); err != nil || time.Now().After(r.Expires) {
		return pendingLogin{}, false
	}
	return pendingLogin{redirect: r.Redirect, verifier: r.Verifier, nonce: r.Nonce, next: r.Next, expires: r.Expires}, true
}

// memoryBackend keeps records in this process: sessions end when it does. It is
// used when the gateway has no NATS.
type memoryBackend struct {
	ttl time.Duration

	mu   sync.Mutex
	recs map[string]memoryRecord
}

type memoryRecord struct {
	val     []byte
	rev     uint64
	written time.Time
}

func newMemoryBackend(ttl time.Duration) *memoryBackend {
	return &memoryBackend{ttl: ttl, recs: map[string]memoryRecord{}}
}

func (m *memoryBackend) load(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[key]
	if !ok || time.Since(r.written) > m.ttl {
		return nil, 0, errNoRecord
	}
	return r.val, r.rev, nil
}

func (m *memoryBackend) save(_ context.Context, key string, val []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if rev == 0 {
		// Records untouched for longer than the bucket's age limit go, as in NATS;
		// swept when one is added, so the map grows no faster than it is pruned.
		for k, r := range m.recs {
			if now.Sub(r.written) > m.ttl {
				delete(m.recs, k)
			}
		}
	}
	if m.recs[key].rev != rev {
		return 0, errRecordChanged
	}
	next := m.recs[key].rev + 1
	m.recs[key] = memoryRecord{val: val, rev: next, written: now}
	return next, nil
}

func (m *memoryBackend) remove(_ context.Context, key string, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev > 0 && m.recs[key].rev != rev {
		return errRecordChanged
	}
	delete(m.recs, key)
	return nil
}

// kvBackend keeps records in a JetStream key-value bucket whose age limit is the
// session lifetime, so the records of abandoned sessions and logins go by
// themselves.
type kvBackend struct {
	kv jetstream.KeyValue
}

// newKVBackend creates the bucket if needed, or updates its settings.
func newKVBackend(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*kvBackend, error) {
	kv, err := messaging.DeclareKeyValue(ctx, js, "gateway sessions: bucket "+SessionBucket, jetstream.KeyValueConfig{
		Bucket:      SessionBucket,
		Description: "storefront sessions and logins in flight",
		History:     1,
		TTL:         ttl,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, err
	}
	return &kvBackend{kv: kv}, nil
}

func (b *kvBackend) load(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, errNoRecord
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

func (b *kvBackend) save(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	var (
		next uint64
		err  error
	)
	if rev == 0 {
		next, err = b.kv.Create(ctx, key, val)
	} else {
		next, err = b.kv.Update(ctx, key, val, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errRecordChanged
	}
	return next, err
}

func (b *kvBackend) remove(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	// Purge rather than delete: the record's revisions go; only a marker stays,
	// until the bucket's age limit.
	err := b.kv.Purge(ctx, key, opts...)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return errRecordChanged
	}
	return err
}
