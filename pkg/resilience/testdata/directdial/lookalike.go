package directdial

import (
	grpc "example.com/notgrpc"
)

// A package merely named grpc is not google.golang.org/grpc.
func lookalike() { grpc.NewClient("x") }
