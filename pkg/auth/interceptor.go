package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// alwaysOpen are method prefixes that never need a token: probes and tooling must
// work before anyone has logged in.
var alwaysOpen = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// errNotBearer is what a caller sees when the authorization header is present but
// is not "Bearer <token>".
var errNotBearer = errors.New("authorization header is not a bearer token")

// InterceptorOption configures the server interceptors.
type InterceptorOption func(*interceptorConfig)

type interceptorConfig struct {
	access Access
	logger *slog.Logger
}

// Rule says who may call one gRPC method.
type Rule struct {
	// Public methods need no token. A token presented anyway is still verified: an
	// invalid one is rejected, a valid one puts claims in the context.
	Public bool
	// Scope, when set, must be one of the token's scopes.
	Scope string
	// Role, when set, must be one of the token's roles.
	Role string
}

// Access is a service's table of who may call what: full method name
// ("/pkg.Service/Method", the generated *_FullMethodName constants) to Rule. Each
// service enforces its own, whatever a gateway in front of it checked: a token with
// only orders:read cannot place an order at the order service's port either.
type Access map[string]Rule

// WithAccess makes the interceptors enforce a: a method it does not list is refused
// with PermissionDenied (closed until someone decides who may call it), a listed one
// needs a valid token unless Public, and the Rule's scope and role. Without it every
// method needs a valid token and nothing more. Health and reflection are always open.
func WithAccess(a Access) InterceptorOption {
	return func(c *interceptorConfig) { c.access = a }
}

// WithLogger sets where rejected tokens are logged (at debug level; an unreachable
// issuer at warn level). Defaults to slog.Default().
func WithLogger(l *slog.Logger) InterceptorOption {
	return func(c *interceptorConfig) { c.logger = l }
}

// UnaryServerInterceptor authenticates every unary call with v. A missing or invalid
// token fails with codes.Unauthenticated and a short reason ("missing bearer token",
// "token expired", "token has wrong audience", ...); an unreachable issuer fails with
// codes.Unavailable. It panics if v is nil, so miswiring fails at start-up.
func UnaryServerInterceptor(v *Verifier, opts ...InterceptorOption) grpc.UnaryServerInterceptor {
	cfg := newInterceptorConfig(v, opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := cfg.authenticate(ctx, v, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls; the claims
// are in the context of the stream handed to the handler.
func StreamServerInterceptor(v *Verifier, opts ...InterceptorOption) grpc.StreamServerInterceptor {
	cfg := newInterceptorConfig(v, opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := cfg.authenticate(ss.Context(), v, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
	}
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }

func newInterceptorConfig(v *Verifier, opts []InterceptorOption) *interceptorConfig {
	if v == nil {
		panic("auth: nil verifier")
	}
	c := &interceptorConfig{}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

func (c *interceptorConfig) authenticate(ctx context.Context, v *Verifier, method string) (context.Context, error) {
	if hasPrefix(method, alwaysOpen) {
		return ctx, nil
	}
	rule, listed := c.access[method]
	if c.access != nil && !listed {
		c.logger.WarnContext(ctx, "request refused: method not in the access table", "method", method)
		return nil, status.Errorf(codes.PermissionDenied, "%s is not open to callers", method)
	}
	raw, err := bearerToken(ctx)
	if err != nil {
		c.logger.DebugContext(ctx, "request rejected", "method", method, "error", err)
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if raw == "" {
		if rule.Public {
			return ctx, nil
		}
		return nil, status.Error(codes.Unauthenticated, ErrMissingToken.Error())
	}
	claims, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, c.statusOf(ctx, method, err)
	}
	if !rule.Public {
		if rule.Scope != "" && !claims.HasScope(rule.Scope) {
			return nil, status.Errorf(codes.PermissionDenied, "missing scope %q", rule.Scope)
		}
		if rule.Role != "" && !claims.HasRole(rule.Role) {
			return nil, status.Errorf(codes.PermissionDenied, "missing role %q", rule.Role)
		}
	}
	return ContextWithClaims(ctx, claims), nil
}

// reasons are the Verify errors whose text a caller may see; anything else is
// reported as ErrInvalidToken so no internal detail leaks.
var reasons = []error{
	ErrMissingToken, ErrUnsupportedAlgorithm, ErrInvalidSignature, ErrWrongIssuer,
	ErrWrongAudience, ErrTokenExpired, ErrTokenNotYetValid, ErrInvalidToken,
}

func (c *interceptorConfig) statusOf(ctx context.Context, method string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrIssuerUnavailable):
		c.logger.WarnContext(ctx, "cannot verify token", "method", method, "error", err)
		return status.Error(codes.Unavailable, ErrIssuerUnavailable.Error())
	}
	c.logger.DebugContext(ctx, "request rejected", "method", method, "error", err)
	for _, r := range reasons {
		if errors.Is(err, r) {
			return status.Error(codes.Unauthenticated, r.Error())
		}
	}
	return status.Error(codes.Unauthenticated, ErrInvalidToken.Error())
}

// bearerToken returns the token of the "authorization" metadata, "" when there is
// none, or errNotBearer when the header is unusable.
func bearerToken(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization") // no copy of the whole metadata
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errNotBearer // two credentials: refuse to guess which one counts
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", errNotBearer
	}
	if token = strings.TrimSpace(token); token == "" {
		return "", errNotBearer
	}
	return token, nil
}

func hasPrefix(method string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}
