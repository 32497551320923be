package auth

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Claims is the verified identity behind a request, read from these token claims:
//
//	sub        Subject (a user, or the client id for client-credentials tokens)
//	scope      Scopes, space separated (an array is accepted too)
//	scp        Scopes as well, merged with scope (Azure/Okta style)
//	roles      Roles, an array of strings
//	email      Email
//	name       Name
//	client_id  ClientID, falling back to azp
type Claims struct {
	// Subject is the "sub" claim: a user id, or a client id for a service token.
	Subject string
	// Scopes are the granted OAuth scopes ("scope" and "scp" merged).
	Scopes []string
	// Roles come from the "roles" claim.
	Roles []string
	// Email and Name are the "email" and "name" claims, empty when not granted.
	Email string
	Name  string
	// ClientID is the OAuth client the token was issued to ("client_id", else "azp").
	ClientID string
	// Token is the raw bearer token, kept so it can be forwarded to the next service.
	Token string
}

// The scopes and role the shop's services and gateway require.
const (
	ScopeCart        = "cart"
	ScopeOrdersRead  = "orders:read"
	ScopeOrdersWrite = "orders:write"
	RoleAdmin        = "admin"
	// RoleService marks service identities (client-credentials tokens): a method
	// whose Rule requires it is for other services only, never for a user, however
	// privileged. No RPC of the shop needs it today: every call between services
	// reads public data (prices, quotes) or carries the user's own token.
	RoleService = "service"
)

// MayRead reports whether the caller in ctx may read a record owned by owner: its
// owner, or an admin. A record with no owner is for admins only. Services answer a
// refused read as NotFound, so nobody learns what exists for someone else. A context
// without claims means a server running with no verifier (tests of one service
// alone): there is no caller to check, as for every other check of this package.
// Every deployed server has a verifier, and its access table admits no anonymous
// call to a method that reads someone's records.
func MayRead(ctx context.Context, owner string) bool {
	c, ok := ClaimsFromContext(ctx)
	if !ok {
		return true
	}
	return c.HasRole(RoleAdmin) || owner != "" && c.Subject == owner
}

// HasScope reports whether the scope was granted.
func (c *Claims) HasScope(scope string) bool {
	return c != nil && slices.Contains(c.Scopes, scope)
}

// HasRole reports whether the subject holds the role.
func (c *Claims) HasRole(role string) bool {
	return c != nil && slices.Contains(c.Roles, role)
}

type claimsKey struct{}

type tokenKey struct{}

// ContextWithClaims returns a copy of ctx carrying c.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the claims put in ctx by the server interceptors or by
// ContextWithClaims; ok is false when the request is unauthenticated.
func ClaimsFromContext(ctx context.Context) (c *Claims, ok bool) {
	c, ok = ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// ContextWithToken returns a copy of ctx carrying a raw bearer token for
// ForwardCredentials to send. It is for callers that hold a token without having
// verified it themselves (a gateway forwarding a session's access token, a CLI).
func ContextWithToken(ctx context.Context, raw string) context.Context {
	return context.WithValue(ctx, tokenKey{}, raw)
}

// TokenFromContext returns the bearer token to forward from ctx: the one set with
// ContextWithToken, else the one behind verified claims. ok is false when there is none.
func TokenFromContext(ctx context.Context) (raw string, ok bool) {
	if raw, _ := ctx.Value(tokenKey{}).(string); raw != "" {
		return raw, true
	}
	if c, ok := ClaimsFromContext(ctx); ok && c.Token != "" {
		return c.Token, true
	}
	return "", false
}

// RequireScope returns nil if the caller's claims grant scope. It returns a gRPC
// status error with codes.Unauthenticated when ctx holds no claims and
// codes.PermissionDenied when the scope is missing.
func RequireScope(ctx context.Context, scope string) error {
	c, ok := ClaimsFromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, ErrMissingToken.Error())
	}
	if !c.HasScope(scope) {
		return status.Errorf(codes.PermissionDenied, "missing scope %q", scope)
	}
	return nil
}

// RequireRole returns nil if the caller holds role. It returns a gRPC status error
// with codes.Unauthenticated when ctx holds no claims and codes.PermissionDenied when
// the role is missing.
func RequireRole(ctx context.Context, role string) error {
	c, ok := ClaimsFromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, ErrMissingToken.Error())
	}
	if !c.HasRole(role) {
		return status.Errorf(codes.PermissionDenied, "missing role %q", role)
	}
	return nil
}
