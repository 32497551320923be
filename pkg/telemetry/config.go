package telemetry

import (
	"errors"
	"flag"
	"fmt"
)

// DefaultEnvironment is the deployment environment flags default to.
const DefaultEnvironment = "dev"

// Config says what a process reports about itself and where its spans go.
// ServiceName has no flag: the binary sets it.
type Config struct {
	// ServiceName is the resource's service.name: "order", or "shopd" for the
	// all-in-one process, whose services each get their own via ForService. Required.
	ServiceName string
	// ServiceVersion is service.version, also the service_version label of every
	// metric, so that a canary's figures can be told from the stable version's (in
	// Kubernetes, the pod's version label); empty takes the main module's version
	// from the build information.
	ServiceVersion string
	// Environment is deployment.environment.name ("dev", "staging", "prod").
	Environment string
	// OTLPEndpoint is the OTLP/gRPC collector spans are exported to, as host:port
	// ("127.0.0.1:4317") or a URL ("http://jaeger:4317"). Empty exports no spans;
	// they are still created, so trace ids propagate and appear in logs.
	OTLPEndpoint string
	// OTLPTLS dials the collector with TLS. Off by default: the collector is on the
	// loopback interface, or behind a mesh sidecar that adds mTLS.
	OTLPTLS bool
	// SampleRatio is the share of new traces recorded, in [0, 1]; a request that
	// arrives with a sampling decision keeps it. RegisterFlags defaults it to 1; a
	// Config built in code that leaves it 0 starts no trace of its own. A process
	// with no exporter records no trace of its own whatever the ratio.
	SampleRatio float64
}

// RegisterFlags defines the telemetry flags on fs, with their defaults, writing into
// c: -otlp-endpoint, -otlp-tls, -trace-sample, -deployment-environment,
// -service-version (each also read from SHOP_<NAME> by config.Parse).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "OTLP/gRPC collector for spans, host:port or URL (e.g. 127.0.0.1:4317); empty exports none")
	fs.BoolVar(&c.OTLPTLS, "otlp-tls", false, "dial the OTLP collector with TLS")
	fs.Float64Var(&c.SampleRatio, "trace-sample", 1, "share of new traces sampled, 0..1 (incoming decisions are kept; none without an exporter)")
	fs.StringVar(&c.Environment, "deployment-environment", DefaultEnvironment, "deployment.environment.name reported with every span and metric")
	fs.StringVar(&c.ServiceVersion, "service-version", "", "service.version reported with every span, and the service_version label of every metric (empty: the build's version)")
}

// Validate returns every problem of c joined into one error.
func (c Config) Validate() error {
	var errs []error
	if c.ServiceName == "" {
		errs = append(errs, errors.New("telemetry: service name is required"))
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("telemetry: trace sample ratio %v is outside [0, 1]", c.SampleRatio))
	}
	return errors.Join(errs...)
}
