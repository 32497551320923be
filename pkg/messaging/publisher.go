package messaging

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/resilience"
)

// BrokerName is the target name of the default publisher's resilience policy, as it
// appears in breaker metrics and logs.
const BrokerName = "nats"

var _ Publisher = (*resilience.Publisher)(nil)

// WithResilience tunes the default publisher (deadline, bulkhead, breaker, retry).
// It is ignored when WithPublisher is also given.
func WithResilience(opts ...resilience.Option) BusOption {
	return func(b *Bus) { b.resOpts = append(b.resOpts, opts...) }
}

// defaultPublisher is what New uses when no WithPublisher option is given: every
// publish, dead letters included, goes through the resilience wrapper.
func defaultPublisher(js jetstream.JetStream, opts []resilience.Option) Publisher {
	return resilience.NewPublisher(js, BrokerName, opts...)
}
