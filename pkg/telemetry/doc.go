// Package telemetry sets up OpenTelemetry for an eventshop process in one call: traces
// exported over OTLP, Prometheus metrics, W3C propagation and slog records that carry
// trace ids. Several services in one process keep their own service.name.
package telemetry
