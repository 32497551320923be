// Package auth verifies OIDC bearer tokens for gRPC services and carries the verified
// identity through the context and on to the next service, so no service trusts a
// client-chosen user field. Claim names, checks and the dev issuer: see README.md.
package auth
