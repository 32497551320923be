// Package adapters connects the order use cases to the outside: the catalog and
// shipping services over gRPC (through pkg/resilience) and a NATS KV bucket for
// aggregate snapshots. Each type satisfies one interface declared in package app.
package adapters
