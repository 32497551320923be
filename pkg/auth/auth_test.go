package auth_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	catalogv1 "github.com/eventshop/eventshop/gen/go/eventshop/catalog/v1"
	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/auth/devissuer"
	"github.com/eventshop/eventshop/pkg/resilience"
)

const catalogPrefix = "/eventshop.catalog.v1.CatalogService/"

// whoami is a catalog service that reports who called it: GetProduct answers with a
// product named after the caller's subject, categories = scopes, attributes = roles
// and client. When next is set, it asks next instead, forwarding the caller's token.
type whoami struct {
	catalogv1.UnimplementedCatalogServiceServer
	next catalogv1.CatalogServiceClient
}

func (w *whoami) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	if w.next != nil {
		return w.next.GetProduct(ctx, req)
	}
	p := &catalogv1.Product{Id: req.GetId(), Attributes: map[string]string{}}
	if c, ok := auth.ClaimsFromContext(ctx); ok {
		p.Name = c.Subject
		p.Categories = c.Scopes
		p.Attributes["roles"] = strings.Join(c.Roles, ",")
		p.Attributes["client"] = c.ClientID
		p.Attributes["email"] = c.Email
		p.Description = c.Name
	}
	return &catalogv1.GetProductResponse{Product: p}, nil
}

// whoamiStream answers any unknown streaming method with the caller's subject; it
// exercises StreamServerInterceptor over real gRPC.
func whoamiStream(_ any, ss grpc.ServerStream) error {
	if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
		return err
	}
	c, _ := auth.ClaimsFromContext(ss.Context())
	var sub string
	if c != nil {
		sub = c.Subject
	}
	return ss.SendMsg(wrapperspb.String(sub))
}

func startIssuer(t *testing.T, cfg devissuer.Config) *devissuer.Issuer {
	t.Helper()
	iss, err := devissuer.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start issuer: %v", err)
	}
	t.Cleanup(func() { iss.Close() })
	return iss
}

func newVerifier(t testing.TB, issuer string, edit func(*auth.VerifierConfig)) *auth.Verifier {
	t.Helper()
	cfg := auth.VerifierConfig{Issuer: issuer}
	if edit != nil {
		edit(&cfg)
	}
	v, err := auth.NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatalf("new verifier: %v", err)
	}
	return v
}

// startServer serves health, whoami and the whoami stream behind the interceptors.
func startServer(t *testing.T, v *auth.Verifier, svc *whoami, opts ...auth.InterceptorOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(v, opts...)),
		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(v, opts...)),
		grpc.UnknownServiceHandler(whoamiStream),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	if svc == nil {
		svc = &whoami{}
	}
	catalogv1.RegisterCatalogServiceServer(srv, svc)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dial connects through pkg/resilience, forwarding the token found in the context.
// Retries and the breaker are off so every rejection reaches the test as it is.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := resilience.Dial(addr,
		resilience.WithRetry(1, 0, 0, 0),
		resilience.WithBreaker(0, 0),
		resilience.WithDialOptions(grpc.WithPerRPCCredentials(auth.ForwardCredentials())),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func whoAmI(ctx context.Context, cc *grpc.ClientConn, token string) (*catalogv1.Product, error) {
	if token != "" {
		ctx = auth.ContextWithToken(ctx, token)
	}
	resp, err := catalogv1.NewCatalogServiceClient(cc).GetProduct(ctx, &catalogv1.GetProductRequest{Id: "p1"})
	return resp.GetProduct(), err
}

func login(t *testing.T, iss *devissuer.Issuer, user string, scopes ...string) string {
	t.Helper()
	tok, err := iss.Login(t.Context(), user, user+"-password", scopes...)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return tok
}

func wantStatus(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msgPart) {
		t.Fatalf("got %v, want %v mentioning %q", err, code, msgPart)
	}
}

func TestValidTokenPutsClaimsInContext(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	cc := dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil))

	p, err := whoAmI(t.Context(), cc, login(t, iss, "alice"))
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if p.GetName() != "alice" {
		t.Errorf("subject = %q, want alice", p.GetName())
	}
	for _, s := range []string{"openid", "profile", "email", "cart", "orders:read", "orders:write"} {
		if !contains(p.GetCategories(), s) {
			t.Errorf("scopes %v lack %q", p.GetCategories(), s)
		}
	}
	if got := p.GetAttributes(); got["roles"] != "" || got["client"] != "storefront" || got["email"] != "alice@example.com" {
		t.Errorf("alice roles/client/email = %q/%q/%q", got["roles"], got["client"], got["email"])
	}
	if p.GetDescription() != "Alice Example" {
		t.Errorf("name = %q", p.GetDescription())
	}

	p, err = whoAmI(t.Context(), cc, login(t, iss, "admin"))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	if p.GetName() != "admin" || p.GetAttributes()["roles"] != "admin" {
		t.Errorf("admin subject/roles = %q/%q", p.GetName(), p.GetAttributes()["roles"])
	}
}

func TestRequestedScopesNarrowTheGrant(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), nil)
	c, err := v.Verify(t.Context(), login(t, iss, "bob", "openid", "cart"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Scopes) != 2 || !c.HasScope("openid") || !c.HasScope("cart") || c.HasScope("orders:write") {
		t.Errorf("scopes = %v, want [openid cart]", c.Scopes)
	}
	if c.Email != "" || c.Name != "" {
		t.Errorf("email/name %q/%q given without email/profile scope", c.Email, c.Name)
	}
}

// TestRejectedTokens runs every attack with the verified-token cache on (the
// default) and off. With it on, the genuine token is verified, and so cached, by each
// verifier that accepts it before the attacks: none of them may ride on that entry.
func TestRejectedTokens(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	other := startIssuer(t, devissuer.Config{})
	valid := login(t, iss, "alice")
	fromOther := login(t, other, "alice")

	for _, mode := range []struct {
		name      string
		cacheSize int
	}{{"cache on", 0}, {"cache off", -1}} {
		t.Run(mode.name, func(t *testing.T) {
			verifier := func(edit func(*auth.VerifierConfig)) *grpc.ClientConn {
				v := newVerifier(t, iss.URL(), func(c *auth.VerifierConfig) {
					c.CacheSize = mode.cacheSize
					if edit != nil {
						edit(c)
					}
				})
				cc := dial(t, startServer(t, v, nil))
				if _, err := whoAmI(t.Context(), cc, valid); err == nil {
					if _, err := whoAmI(t.Context(), cc, valid); err != nil {
						t.Fatalf("genuine token refused the second time: %v", err)
					}
				}
				return cc
			}
			strict := verifier(nil)
			later := verifier(func(c *auth.VerifierConfig) {
				c.Now = func() time.Time { return time.Now().Add(devissuer.DefaultAccessTokenTTL + time.Minute) }
			})
			earlier := verifier(func(c *auth.VerifierConfig) {
				c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			})
			otherAudience := verifier(func(c *auth.VerifierConfig) { c.Audience = "billing" })

			tests := []struct {
				name  string
				cc    *grpc.ClientConn
				token string
				want  string
			}{
				{"expired", later, valid, "token expired"},
				{"not yet valid (future nbf)", earlier, valid, "token not yet valid"},
				{"wrong issuer", strict, fromOther, "wrong issuer"},
				{"wrong audience", otherAudience, valid, "wrong audience"},
				{"tampered signature", strict, tamperSignature(valid), "signature invalid"},
				{"tampered payload", strict, swapPayload(valid, `"sub":"alice"`, `"sub":"admin"`), "signature invalid"},
				{"one payload byte changed", strict, swapPayload(valid, `"sub":"alice"`, `"sub":"alicf"`), "signature invalid"},
				{"forged signature under the issuer's kid", strict, forge(t, valid, ""), "signature invalid"},
				{"forged signature under an unknown kid", strict, forge(t, valid, "attacker-key"), "signature invalid"},
				{"alg none", strict, algNone(valid), "algorithm not allowed"},
				{"HS256 signed with a guessable key", strict, hs256(valid, []byte("eventshop")), "algorithm not allowed"},
				{"garbage", strict, "not-a-jwt", "invalid token"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := whoAmI(t.Context(), tt.cc, tt.token)
					wantStatus(t, err, codes.Unauthenticated, tt.want)
				})
			}
		})
	}
}

func TestMissingOrMalformedCredentials(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	cc := dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil))

	_, err := whoAmI(t.Context(), cc, "")
	wantStatus(t, err, codes.Unauthenticated, "missing bearer token")

	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Basic YWxpY2U6cHc=")
	_, err = whoAmI(ctx, cc, "")
	wantStatus(t, err, codes.Unauthenticated, "not a bearer token")
}

func TestHealthAndReflectionNeedNoToken(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	cc := dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil))

	resp, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health without token: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v", resp.GetStatus())
	}
	// Probes must keep working even when whatever token they carry is stale.
	if _, err := healthpb.NewHealthClient(cc).Check(auth.ContextWithToken(t.Context(), "stale"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health with a bad token: %v", err)
	}
}

func TestPublicMethods(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	getProduct := catalogPrefix + "GetProduct"
	cc := dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil, auth.WithAccess(auth.Access{getProduct: {Public: true}})))

	p, err := whoAmI(t.Context(), cc, "")
	if err != nil {
		t.Fatalf("public method without token: %v", err)
	}
	if p.GetName() != "" {
		t.Errorf("anonymous call has subject %q", p.GetName())
	}

	_, err = whoAmI(t.Context(), cc, tamperSignature(login(t, iss, "bob")))
	wantStatus(t, err, codes.Unauthenticated, "signature invalid")

	p, err = whoAmI(t.Context(), cc, login(t, iss, "bob"))
	if err != nil || p.GetName() != "bob" {
		t.Fatalf("public method with bob's token: subject %q, err %v", p.GetName(), err)
	}

	// A method that is listed but not public still needs a token.
	_, err = whoAmI(t.Context(), dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil, auth.WithAccess(auth.Access{getProduct: {}}))), "")
	wantStatus(t, err, codes.Unauthenticated, "missing bearer token")
}

// Each service enforces its own table: the scope and role a method needs, and no
// method that the table does not list, whatever token comes.
func TestAccessTableScopesAndRoles(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	getProduct := catalogPrefix + "GetProduct"
	serve := func(a auth.Access) *grpc.ClientConn {
		return dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil, auth.WithAccess(a)))
	}
	writer := login(t, iss, "alice", "openid", "orders:write")
	reader := login(t, iss, "alice", "openid", "orders:read")
	admin := login(t, iss, "admin")

	scoped := serve(auth.Access{getProduct: {Scope: "orders:write"}})
	if _, err := whoAmI(t.Context(), scoped, writer); err != nil {
		t.Fatalf("token with the scope: %v", err)
	}
	_, err := whoAmI(t.Context(), scoped, reader)
	wantStatus(t, err, codes.PermissionDenied, `missing scope "orders:write"`)

	roled := serve(auth.Access{getProduct: {Role: "admin"}})
	if _, err := whoAmI(t.Context(), roled, admin); err != nil {
		t.Fatalf("admin: %v", err)
	}
	_, err = whoAmI(t.Context(), roled, writer)
	wantStatus(t, err, codes.PermissionDenied, `missing role "admin"`)

	// For service identities only: a client-credentials token, never a user.
	serviceOnly := serve(auth.Access{getProduct: {Role: auth.RoleService}})
	robot, err := iss.ClientCredentials(t.Context(), "shop-cli", "shop-cli-secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whoAmI(t.Context(), serviceOnly, robot); err != nil {
		t.Fatalf("service identity: %v", err)
	}
	_, err = whoAmI(t.Context(), serviceOnly, admin)
	wantStatus(t, err, codes.PermissionDenied, `missing role "service"`)

	unlisted := serve(auth.Access{catalogPrefix + "ListProducts": {Public: true}})
	_, err = whoAmI(t.Context(), unlisted, admin)
	wantStatus(t, err, codes.PermissionDenied, "not open to callers")
	_, err = whoAmI(t.Context(), unlisted, "")
	wantStatus(t, err, codes.PermissionDenied, "not open to callers")
}

func TestForwardCredentialsCarriesIdentityToNextService(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), nil)
	second := dial(t, startServer(t, v, nil))
	first := dial(t, startServer(t, v, &whoami{next: catalogv1.NewCatalogServiceClient(second)}))

	p, err := whoAmI(t.Context(), first, login(t, iss, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if p.GetName() != "alice" {
		t.Errorf("second service saw subject %q, want alice", p.GetName())
	}

	// Without a token nothing is forwarded, so the first service rejects the call.
	_, err = whoAmI(t.Context(), first, "")
	wantStatus(t, err, codes.Unauthenticated, "missing bearer token")
}

func TestStreamInterceptor(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	cc := dial(t, startServer(t, newVerifier(t, iss.URL(), nil), nil))
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

	who := func(ctx context.Context) (string, error) {
		s, err := cc.NewStream(ctx, desc, "/eventshop.test.v1.Echo/Who")
		if err != nil {
			return "", err
		}
		// A rejected stream ends before our message is read: SendMsg then reports
		// io.EOF and the status comes from RecvMsg.
		if err := s.SendMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		if err := s.CloseSend(); err != nil {
			return "", err
		}
		var out wrapperspb.StringValue
		if err := s.RecvMsg(&out); err != nil {
			return "", err
		}
		return out.GetValue(), nil
	}

	_, err := who(t.Context())
	wantStatus(t, err, codes.Unauthenticated, "missing bearer token")

	sub, err := who(auth.ContextWithToken(t.Context(), login(t, iss, "bob")))
	if err != nil || sub != "bob" {
		t.Fatalf("stream as bob: subject %q, err %v", sub, err)
	}
}

func TestClientCredentialsToken(t *testing.T) {
	iss := startIssuer(t, devissuer.Config{})
	v := newVerifier(t, iss.URL(), nil)
	tok, err := iss.ClientCredentials(t.Context(), "shop-cli", "shop-cli-secret")
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "shop-cli" || c.ClientID != "shop-cli" || !c.HasRole("service") || !c.HasScope("orders:read") {
		t.Errorf("claims = %+v", c)
	}
}

// TestIssuerLateAtStartup: a verifier created before its issuer answers reports the
// issuer unavailable (retryable), then works once the issuer is up, without restart.
func TestIssuerLateAtStartup(t *testing.T) {
	var backend atomic.Pointer[http.Handler]
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := backend.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(lis)
	t.Cleanup(func() { front.Close() })
	url := "http://" + lis.Addr().String()

	v := newVerifier(t, url, nil)
	cc := dial(t, startServer(t, v, nil))

	// Get a token first (Login talks to the issuer through the front as well), then
	// take the issuer "down" before the verifier has ever reached it.
	iss := startIssuer(t, devissuer.Config{Issuer: url})
	h := iss.Handler()
	backend.Store(&h)
	tok := login(t, iss, "alice")
	backend.Store(nil)

	_, err = whoAmI(t.Context(), cc, tok)
	wantStatus(t, err, codes.Unavailable, "issuer unavailable")
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, auth.ErrIssuerUnavailable) {
		t.Fatalf("Verify while issuer down: %v, want ErrIssuerUnavailable", err)
	}

	backend.Store(&h)
	p, err := whoAmI(t.Context(), cc, tok)
	if err != nil || p.GetName() != "alice" {
		t.Fatalf("after issuer came up: subject %q, err %v", p.GetName(), err)
	}
}

func TestNewVerifierNeedsNoIssuer(t *testing.T) {
	if _, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{Issuer: "http://127.0.0.1:1"}); err != nil {
		t.Fatalf("NewVerifier must not contact the issuer: %v", err)
	}
	if _, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{}); err == nil {
		t.Fatal("NewVerifier accepted an empty issuer")
	}
}

func TestRequireScopeAndRole(t *testing.T) {
	ctx := auth.ContextWithClaims(context.Background(), &auth.Claims{Subject: "alice", Scopes: []string{"cart"}, Roles: []string{"admin"}})
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"scope held", auth.RequireScope(ctx, "cart"), codes.OK},
		{"scope missing", auth.RequireScope(ctx, "orders:write"), codes.PermissionDenied},
		{"role held", auth.RequireRole(ctx, "admin"), codes.OK},
		{"role missing", auth.RequireRole(ctx, "service"), codes.PermissionDenied},
		{"no claims, scope", auth.RequireScope(context.Background(), "cart"), codes.Unauthenticated},
		{"no claims, role", auth.RequireRole(context.Background(), "admin"), codes.Unauthenticated},
	}
	for _, tt := range tests {
		if got := status.Code(tt.err); got != tt.want {
			t.Errorf("%s: code %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTokenFromContext(t *testing.T) {
	if _, ok := auth.TokenFromContext(context.Background()); ok {
		t.Error("empty context has a token")
	}
	ctx := auth.ContextWithClaims(context.Background(), &auth.Claims{Subject: "alice", Token: "from-claims"})
	if tok, _ := auth.TokenFromContext(ctx); tok != "from-claims" {
		t.Errorf("token = %q, want the verified one", tok)
	}
	if tok, _ := auth.TokenFromContext(auth.ContextWithToken(ctx, "explicit")); tok != "explicit" {
		t.Errorf("token = %q, want the explicitly set one", tok)
	}
	md, err := auth.ForwardCredentials().GetRequestMetadata(context.Background())
	if err != nil || len(md) != 0 {
		t.Errorf("credentials without token sent %v (err %v)", md, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func segments(tok string) []string { return strings.Split(tok, ".") }

// tamperSignature flips bits in the middle of the signature.
func tamperSignature(tok string) string {
	p := segments(tok)
	sig, _ := base64.RawURLEncoding.DecodeString(p[2])
	sig[len(sig)/2] ^= 0xff
	p[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(p, ".")
}

// swapPayload edits the payload and keeps the original signature.
func swapPayload(tok, old, new string) string {
	p := segments(tok)
	payload, _ := base64.RawURLEncoding.DecodeString(p[1])
	p[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), old, new, 1)))
	return strings.Join(p, ".")
}

// algNone keeps the genuine claims but declares no signature.
func algNone(tok string) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return header + "." + segments(tok)[1] + "."
}

// forge signs the genuine claims with a fresh RSA key of the attacker's, under the
// issuer's own kid when kid is empty.
func forge(t *testing.T, tok, kid string) string {
	t.Helper()
	if kid == "" {
		var h struct {
			Kid string `json:"kid"`
		}
		raw, _ := base64.RawURLEncoding.DecodeString(segments(tok)[0])
		if err := json.Unmarshal(raw, &h); err != nil || h.Kid == "" {
			t.Fatalf("token header %s has no kid: %v", raw, err)
		}
		kid = h.Kid
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	input := base64.RawURLEncoding.EncodeToString(header) + "." + segments(tok)[1]
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hs256 re-signs the genuine claims with HMAC under key.
func hs256(tok string, key []byte) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	input := header + "." + segments(tok)[1]
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
