// Package natstest starts a fresh embedded NATS JetStream server for one test, with its
// store in the test's temporary directory, and shuts it down when the test ends.
package natstest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/natsembed"
)

// Start returns a running embedded server owned by t.
func Start(t testing.TB) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(context.Background(), natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Connect starts a server and returns a client connection to it, both closed when t ends.
func Connect(t testing.TB) (*natsembed.Server, *nats.Conn) {
	t.Helper()
	s := Start(t)
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return s, nc
}
