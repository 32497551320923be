package resilience

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// PropagatedHeaders are request headers a service copies from the call it is serving
// onto every call it makes. The mesh routes each hop on them (x-canary: always sends a
// tester's request to the v2 subset of every service on the way, not only the first),
// and that only works if each hop forwards them, as it does trace context.
var PropagatedHeaders = []string{"x-canary"}

// propagate returns ctx with PropagatedHeaders of the incoming call added to the
// outgoing metadata, unless the caller already set them.
func propagate(ctx context.Context) context.Context {
	// Looked up one by one: copying the incoming and outgoing metadata whole, on
	// every call made, allocated more than the call's own headers.
	for _, h := range PropagatedHeaders {
		vs := metadata.ValueFromIncomingContext(ctx, h)
		if len(vs) == 0 {
			continue
		}
		if out, ok := metadata.FromOutgoingContext(ctx); ok && len(out.Get(h)) > 0 {
			continue
		}
		ctx = metadata.AppendToOutgoingContext(ctx, h, vs[0])
	}
	return ctx
}

func propagateUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(propagate(ctx), method, req, reply, cc, opts...)
}

func propagateStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(propagate(ctx), desc, cc, method, opts...)
}
