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
	in, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	out, _ := metadata.FromOutgoingContext(ctx)
	for _, h := range PropagatedHeaders {
		if vs := in.Get(h); len(vs) > 0 && len(out.Get(h)) == 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, h, vs[0])
		}
	}
	return ctx
}

func propagateUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(propagate(ctx), method, req, reply, cc, opts...)
}

func propagateStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(propagate(ctx), desc, cc, method, opts...)
}
