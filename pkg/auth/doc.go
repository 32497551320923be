// Package auth verifies OIDC bearer tokens for gRPC services and carries the verified
// identity through the context, so a service never trusts a client-chosen user field.
// Subpackage devissuer is an in-process OpenID Provider for local runs and tests.
//
// # Tokens and claims
//
// Services accept JWT access tokens (RFC 9068 style) signed with RS256 or ES256 by the
// configured issuer; "alg: none" and HMAC tokens are rejected before any key is looked
// up. A token is accepted when its "iss" equals the configured issuer exactly, its
// "aud" contains the configured audience (by default "eventshop"), and "exp"/"nbf"
// hold within the leeway (DefaultLeeway, 10s: enough for clock skew between pods and
// short enough that a revoked session dies quickly). The claims read are:
//
//	sub        Claims.Subject (the user, or the client id for client-credentials tokens)
//	scope      Claims.Scopes, space separated (an array is accepted too)
//	scp        Claims.Scopes as well, merged with scope (Azure/Okta style)
//	roles      Claims.Roles, an array of strings
//	email      Claims.Email
//	name       Claims.Name
//	client_id  Claims.ClientID, falling back to azp
//
// # Discovery
//
// NewVerifier does no network I/O: discovery and the first JWKS fetch happen on the
// first Verify and are retried on later calls until they succeed. In the all-in-one
// runner the issuer and the services start together, and a service must not die
// because the issuer answered a few hundred milliseconds late. While the issuer is
// unreachable, Verify fails with ErrIssuerUnavailable (gRPC Unavailable), which a
// client may retry. Keys are cached and refetched when a token names an unknown key.
//
// # gRPC
//
// UnaryServerInterceptor and StreamServerInterceptor demand "authorization: Bearer
// <token>" on every method except the health service, server reflection and the
// prefixes given with WithPublicMethods. ForwardCredentials sends the caller's token
// on to the next service, so identity travels as a verified token, not as a field.
package auth
