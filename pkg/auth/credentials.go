package auth

import (
	"context"

	"google.golang.org/grpc/credentials"
)

// ForwardCredentials returns per-RPC credentials that send the caller's bearer token
// (see TokenFromContext) on outgoing calls, so the next service sees the same
// identity. Nothing is sent when the context holds no token. It does not require
// transport security: in-cluster traffic is protected by the mesh's mTLS, below gRPC.
func ForwardCredentials() credentials.PerRPCCredentials { return forwardCredentials{} }

type forwardCredentials struct{}

var _ credentials.PerRPCCredentials = forwardCredentials{}

// GetRequestMetadata never returns an error.
func (forwardCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	raw, ok := TokenFromContext(ctx)
	if !ok {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + raw}, nil
}

func (forwardCredentials) RequireTransportSecurity() bool { return false }
