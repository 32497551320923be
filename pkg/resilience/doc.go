// Package resilience wraps every outbound call of eventshop, gRPC and NATS alike, in a
// deadline, a bulkhead, a per-target circuit breaker and a bounded retry, so that one
// slow or failing dependency degrades a caller instead of taking it down.
package resilience
