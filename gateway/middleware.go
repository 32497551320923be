package gateway

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventshop/eventshop/pkg/auth"
)

// contentSecurityPolicy lets pages load only the gateway's own scripts, styles and
// images: no inline script or style, no framing, forms post only to the gateway.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(https bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		// Behind a proxy or mesh that terminates TLS the request arrives in plain
		// HTTP, so the public URL says whether browsers reach the shop over https.
		if https || r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// validUTF8 answers 400 to a request whose path or query is not valid UTF-8 once
// decoded, naming the part: nothing behind the gateway can carry such text (a
// protobuf string must be UTF-8), so it used to fail deep inside as an internal error.
func (g *Gateway) validUTF8(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad := ""
		if !utf8.ValidString(r.URL.Path) {
			bad = "path"
		} else if q, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			bad = "query"
		} else {
			for _, k := range slices.Sorted(maps.Keys(q)) {
				if !utf8.ValidString(k) || slices.ContainsFunc(q[k], func(v string) bool { return !utf8.ValidString(v) }) {
					bad = "query parameter " + strconv.Quote(strings.ToValidUTF8(k, "\ufffd"))
					break
				}
			}
		}
		if bad == "" {
			next.ServeHTTP(w, r)
			return
		}
		msg := "the request's " + bad + " is not valid UTF-8 (or not well-formed percent-encoding)"
		if strings.HasPrefix(r.URL.Path, "/api/") {
			st, _ := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{
				FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: bad, Description: "must be valid UTF-8"}},
			})
			writeError(w, http.StatusBadRequest, st)
			return
		}
		g.renderError(w, r, http.StatusBadRequest, "The address is not valid: its "+bad+" is not valid UTF-8.")
	})
}

// corsAPI answers CORS for the API: only configured origins, never credentials
// (the API authenticates with bearer tokens, not cookies), preflights answered here.
func corsAPI(origins []string, next http.Handler) http.Handler {
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		allowed := origin != "" && (any || slices.Contains(origins, origin))
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				writeError(w, http.StatusForbidden, status.New(codes.PermissionDenied, "origin not allowed"))
				return
			}
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func splitOrigins(s string) []string {
	var out []string
	for o := range strings.SplitSeq(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, strings.TrimSuffix(o, "/"))
		}
	}
	return out
}

type bodyStateKey struct{}

// bodyState records that a request body hit the cap, so the error handlers can answer
// 413 whichever decoder noticed it.
type bodyState struct{ tooLarge atomic.Bool }

type cappedBody struct {
	io.ReadCloser
	state *bodyState
}

func (b cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.state.tooLarge.Store(true)
	}
	return n, err
}

// limitBody rejects a declared oversized body at once and caps an undeclared one.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, status.Newf(codes.InvalidArgument, "request body exceeds %d bytes", max))
			return
		}
		st := &bodyState{}
		r.Body = cappedBody{ReadCloser: http.MaxBytesReader(w, r.Body, max), state: st}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyStateKey{}, st)))
	})
}

func bodyTooLarge(r *http.Request) bool {
	st, ok := r.Context().Value(bodyStateKey{}).(*bodyState)
	return ok && st.tooLarge.Load()
}

// limiterIdle is how long an unused per-key limiter is kept.
const limiterIdle = 10 * time.Minute

// keyedLimiter is a token bucket per key (an IP or a user), forgotten when idle.
type keyedLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	m         map[string]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(perSecond float64, burst int) *keyedLimiter {
	return &keyedLimiter{limit: rate.Limit(perSecond), burst: burst, m: map[string]*limiterEntry{}}
}

// reserve takes a token for key; it returns 0 when allowed, else how long until one
// would be free (the token is not taken then).
func (k *keyedLimiter) reserve(key string, now time.Time) time.Duration {
	k.mu.Lock()
	if now.Sub(k.lastSweep) > limiterIdle {
		for key, e := range k.m {
			if now.Sub(e.seen) > limiterIdle {
				delete(k.m, key)
			}
		}
		k.lastSweep = now
	}
	e, ok := k.m[key]
	if !ok {
		e = &limiterEntry{lim: rate.NewLimiter(k.limit, k.burst)}
		k.m[key] = e
	}
	e.seen = now
	k.mu.Unlock()

	res := e.lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// limiters are the gateway's per-IP and per-user rate limits, and the cap on each
// user's open order streams.
type limiters struct {
	ip, user       *keyedLimiter
	trustForwarded bool
	rejected       atomic.Int64

	streamsMu  sync.Mutex
	streams    map[string]int // open order streams by user
	maxStreams int
}

// openStream takes one of user's order-stream slots and returns its release, or
// answers 429 and returns nil when the user holds Config.StreamsPerUser already. A
// browser tab on an order page holds one; a stream costs a connection, a goroutine
// and a watch in the order service for minutes, so one user must not be able to
// open them by the hundred.
func (l *limiters) openStream(w http.ResponseWriter, user string) (release func()) {
	l.streamsMu.Lock()
	defer l.streamsMu.Unlock()
	if l.streams[user] >= l.maxStreams {
		l.rejected.Add(1)
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, status.Newf(codes.ResourceExhausted, "too many open order streams for this user (at most %d)", l.maxStreams))
		return nil
	}
	l.streams[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.streamsMu.Lock()
			defer l.streamsMu.Unlock()
			if l.streams[user]--; l.streams[user] <= 0 {
				delete(l.streams, user)
			}
		})
	}
}

func newLimiters(cfg Config) *limiters {
	return &limiters{
		ip:             newKeyedLimiter(cfg.IPRate, cfg.IPBurst),
		user:           newKeyedLimiter(cfg.UserRate, cfg.UserBurst),
		trustForwarded: cfg.TrustForwardedFor,
		streams:        map[string]int{},
		maxStreams:     cfg.StreamsPerUser,
	}
}

// clientIP is the TCP peer, or the last X-Forwarded-For hop when the gateway is
// told it sits behind a proxy: the last hop is the one the proxy itself added, and
// the hops before it are whatever the client claimed. Every X-Forwarded-For line
// counts, in order (a proxy may add its own line after the client's instead of
// appending to it), and a last hop that is not an IP address is not trusted.
func (l *limiters) clientIP(r *http.Request) string {
	if l.trustForwarded {
		var last string
		for _, line := range r.Header.Values("X-Forwarded-For") {
			for hop := range strings.SplitSeq(line, ",") {
				if hop = strings.TrimSpace(hop); hop != "" {
					last = hop
				}
			}
		}
		if ip := net.ParseIP(last); ip != nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// perIP rejects a client IP over its rate with 429 and Retry-After.
func (l *limiters) perIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := l.ip.reserve(l.clientIP(r), time.Now()); d > 0 {
			l.tooMany(w, d, "too many requests from this address")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowUser takes a token for the authenticated user, answering 429 when over the
// rate. Anonymous requests are limited by IP only.
func (l *limiters) allowUser(w http.ResponseWriter, c *auth.Claims) bool {
	if c == nil || c.Subject == "" {
		return true
	}
	if d := l.user.reserve(c.Subject, time.Now()); d > 0 {
		l.tooMany(w, d, "too many requests for this user")
		return false
	}
	return true
}

func (l *limiters) tooMany(w http.ResponseWriter, d time.Duration, msg string) {
	l.rejected.Add(1)
	w.Header().Set("Retry-After", retryAfter(d.Seconds()))
	writeError(w, http.StatusTooManyRequests, status.New(codes.ResourceExhausted, msg))
}
