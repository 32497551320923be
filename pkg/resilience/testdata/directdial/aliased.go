// Package directdial is a fixture for the no-direct-client check: it dials around
// pkg/resilience through an aliased import, which the check must still catch.
package directdial

import (
	g "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func connect(target string) (*g.ClientConn, error) {
	return g.NewClient(target, g.WithTransportCredentials(insecure.NewCredentials()))
}
